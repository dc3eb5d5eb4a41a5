"""Drive the Dagster UI of the demo in headless Chromium and check what a user must see.

Starts `fullbay-demo --ui` (the demo's runs, then `dg dev`) on a free port with its
own home, then, with Playwright's Python API and Debian's Chromium (Playwright's own
browser downloads are not used): the asset graph shows every table and
Fullbay's endpoint; a day's partition page shows that day's own row count (read
from the warehouse independently); the work orders' overview shows the column
schema; the checks tab shows the day's checks; the deployment's concurrency page
lists the fullbay_api pool; the demo's run is in the Overview timeline; a user's
"Materialize" of one partition from an asset page launches a run through the
queued coordinator that succeeds and closes its run-log row. Screenshots go to
docs/ui/. Finally it presses Ctrl+C (SIGINT to the process group) and checks the
demo exits cleanly and the log has no warning from this project.

    python scripts/ui_check.py [--chromium /usr/bin/chromium] [--keep-home]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from fullbay_dagster.defs.tables import TABLES

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "ui"
TABLE_ASSETS = list(TABLES)  # every table the pipeline writes
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_server(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the demo exited with {process.returncode} before the UI came up")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):  # noqa: S310 (our own local server)
                return
        except OSError:
            time.sleep(2)
    raise SystemExit(f"the UI did not answer at {url} within {timeout:.0f} s")


def open_page(page: Page, url: str, expect: str) -> str:
    """Open a UI page, dismiss the first-visit dialog, wait for ``expect``; return the page text."""
    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(Exception):  # the dialog shows only on a first visit
        skip.click(timeout=5000)
    page.get_by_text(expect, exact=False).first.wait_for(timeout=60000)
    page.wait_for_timeout(1500)  # let the rest of the page settle before the screenshot
    return page.inner_text("body")


def check(condition: bool, what: str, failures: list[str]) -> None:
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


def day_counts(warehouse: Path, lines: bool = False) -> dict[str, int]:
    """Live work orders (or their lines) per day, straight from the demo's SQLite warehouse."""
    join = "JOIN fullbay_work_order_lines l ON l.fullbay_id = w.fullbay_id" if lines else ""
    with sqlite3.connect(warehouse) as connection:
        rows = connection.execute(
            f"SELECT w.invoice_date, COUNT(*) FROM fullbay_work_orders w {join} "
            "WHERE w.deleted_at IS NULL GROUP BY w.invoice_date"
        ).fetchall()
    return {str(day): int(count) for day, count in rows}


def row_count_shown(text: str) -> int | None:
    shown = re.search(r"dagster/row_count\s+([\d,]+)", text)
    return int(shown.group(1).replace(",", "")) if shown else None


def drive(base: str, warehouse: Path, chromium: str, failures: list[str]) -> None:
    counts = day_counts(warehouse)
    # a day whose count differs from its neighbours', so a copied range figure would show
    days = sorted(counts)
    day = next((d for d in days[1:-1] if counts[d] not in (counts[days[0]], counts[days[-1]])), days[len(days) // 2])
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        text = open_page(page, f"{base}/asset-groups/fullbay", "work_order_lines")
        page.screenshot(path=SHOTS / "asset_graph.png")
        for name in [*TABLE_ASSETS, "getInvoices"]:
            check(name in text, f"asset graph shows {name}", failures)

        url = f"{base}/assets/work_orders?view=partitions&partition={day}"
        text = open_page(page, url, "dagster/row_count")
        page.screenshot(path=SHOTS / "partition_page.png")
        shown = row_count_shown(text)
        check(shown == counts[day], f"partition {day} shows its own row count {counts[day]} (page: {shown})", failures)
        check("run_span" in text and "first_day" not in text, "range figures are named run_*", failures)
        lines = day_counts(warehouse, lines=True)  # lines differ from day to day
        for other in days:
            text = open_page(page, f"{base}/assets/work_order_lines?view=partitions&partition={other}", "row_count")
            shown = row_count_shown(text)
            check(shown == lines[other], f"lines partition {other} shows {lines[other]} (page: {shown})", failures)

        text = open_page(page, f"{base}/assets/work_orders", "total_amount")
        page.screenshot(path=SHOTS / "column_schema.png", full_page=True)
        check("fullbay_work_orders" in text, "table name fullbay_work_orders is shown", failures)
        check("NUMERIC(16, 4)" in text and "vehicle_info" in text, "column schema with types is shown", failures)

        text = open_page(page, f"{base}/assets/work_orders?view=checks", "rows_match_api_count")
        page.screenshot(path=SHOTS / "checks_tab.png")
        check("raw_and_normalised_agree" in text, "checks tab lists the work orders' checks", failures)

        text = open_page(page, f"{base}/overview/activity/timeline", "fullbay_daily_job")
        page.screenshot(path=SHOTS / "timeline.png")
        check("fullbay_daily_job" in text, "the demo's run is in the Overview timeline", failures)

        text = open_page(page, f"{base}/deployment/concurrency", "fullbay_api")
        page.screenshot(path=SHOTS / "pools.png")
        check("fullbay_api" in text, "the deployment lists the pool fullbay_api", failures)
        launch_from_asset_page(page, base, warehouse, failures)
        browser.close()


def latest_run(base: str) -> dict[str, str]:
    """The newest run, through the webserver's GraphQL API (what the UI itself reads)."""
    query = "{ runsOrError(limit: 1) { ... on Runs { results { runId status tags { key value } } } } }"
    request = urllib.request.Request(  # noqa: S310 (our own local server)
        f"{base}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        [run] = json.load(answer)["data"]["runsOrError"]["results"]
    return {"run_id": run["runId"], "status": run["status"], **{t["key"]: t["value"] for t in run["tags"]}}


def launch_from_asset_page(page: Page, base: str, warehouse: Path, failures: list[str]) -> None:
    """What a user does first: "Materialize" on raw_work_orders, the latest day, launch."""
    before = latest_run(base)["run_id"]
    open_page(page, f"{base}/assets/raw_work_orders", "raw_work_orders")
    page.get_by_role("button", name="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Partition selection").wait_for(timeout=60000)
    dialog.get_by_role("button", name="Latest").click()
    page.wait_for_timeout(1000)
    page.screenshot(path=SHOTS / "launch_dialog.png")
    check("Warning" not in dialog.inner_text(), "the launch dialog shows no warning", failures)
    dialog.get_by_role("button", name="Launch 1 run").click()
    deadline = time.monotonic() + 300
    run = latest_run(base)
    while (run["run_id"] == before or run["status"] not in ("SUCCESS", "FAILURE", "CANCELED")) and (
        time.monotonic() < deadline
    ):
        time.sleep(2)
        run = latest_run(base)
    check(run["run_id"] != before, "Materialize launched a run", failures)
    check(run["status"] == "SUCCESS", f"the launched run succeeded ({run['status']})", failures)
    with sqlite3.connect(warehouse) as connection:
        statuses = [
            status
            for (status,) in connection.execute(
                "SELECT status FROM ingestion_metadata WHERE dagster_run_id = ?", (run["run_id"],)
            )
        ]
    check(
        statuses == ["success"],
        f"its run-log row for {run.get('dagster/partition')} is closed as success ({statuses})",
        failures,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--keep-home", action="store_true", help="keep the demo's folder (printed)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fullbay-ui-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = home / "dev.log"
    failures: list[str] = []
    demo = [str(Path(sys.executable).with_name("fullbay-demo")), "--ui", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own entry point)
            [*demo, "--days", str(args.days), "--home", str(home)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        try:
            wait_for_server(base, process)
            drive(base, home / "warehouse.db", args.chromium, failures)
        finally:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl+C does in a terminal
            try:
                code = process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = -9
    output = log_path.read_text(errors="replace")
    check(code == 0 and "Traceback" not in output, f"Ctrl+C: the demo exited cleanly (exit {code})", failures)
    own_warnings = [
        line
        for line in output.splitlines()
        if "warn" in line.lower() and ("fullbay_dagster" in line or str(ROOT) in line) and "site-packages" not in line
    ]
    check(not own_warnings, "no warning from the project's own files in dev.log", failures)
    for line in own_warnings[:10]:
        print("      " + line[:300])
    print(f"screenshots in {SHOTS}; log {log_path}")
    if not args.keep_home and not failures:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    if failures:
        print(f"{len(failures)} UI check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
