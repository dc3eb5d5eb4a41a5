"""Run the whole pipeline locally: simulator -> Dagster -> SQLite, then summarise.

This is the only place where the simulator and SQLite are wired in; production
configuration never falls back to them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance

from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.engine import make_engine

DEMO_KEY = "demo-key-00000000-0000-0000-0000-000000000000"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Not in the project root: Dagster warns about a dagster.yaml there that DAGSTER_HOME does not use.
LOCAL_INSTANCE = PROJECT_ROOT / "deploy" / "local" / "dagster.yaml"


def demo_environment(home: Path, simulator_url: str, start_date: date) -> dict[str, str]:
    return {
        "DAGSTER_HOME": str(home / "dagster_home"),
        "DATABASE_URL": f"sqlite:///{home / 'warehouse.db'}",
        "FULLBAY_API_KEY": DEMO_KEY,
        "FULLBAY_API_BASE_URL": simulator_url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": start_date.isoformat(),
        "ENVIRONMENT": "demo",
    }


# The demo's own run launches at once instead of queueing for a daemon (none runs
# yet); the fullbay_api pool still holds every Fullbay call.
DEMO_RUN_COORDINATOR = "\nrun_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"


def prepare_home(home: Path, *, daemon: bool = False) -> None:
    """The local instance; with ``daemon`` (the UI: `dg dev` runs one) runs queue as
    deployed, so the UI's backfills and launches go through the queued coordinator."""
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    local = LOCAL_INSTANCE.read_text()
    (dagster_home / "dagster.yaml").write_text(local if daemon else local + DEMO_RUN_COORDINATOR)


def materialize(first: str, last: str) -> bool:
    """Launch the job on the code location, as the UI does (so the run carries its
    origin and shows in the Overview timeline), and wait for it to finish."""
    from fullbay_dagster.defs.partitions import range_tags

    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    command = [
        *(sys.executable, "-m", "dagster", "job", "launch", "-m", "fullbay_dagster", "-j", "fullbay_daily_job"),
        *("--tags", json.dumps(range_tags(first, last)), "--config-json", json.dumps(config)),
    ]
    with DagsterInstance.get() as instance:
        known = {run.run_id for run in instance.get_runs()}
        if subprocess.call(command, cwd=PROJECT_ROOT) != 0:
            return False
        [run] = [run for run in instance.get_runs(limit=len(known) + 1) if run.run_id not in known]
        while not run.is_finished:
            time.sleep(1)
            run = instance.get_run_by_id(run.run_id) or run
        return run.is_success


def summary(database_url: str) -> str:
    engine = make_engine(database_url)
    by_day = pd.read_sql(
        "SELECT w.invoice_date AS day, COUNT(*) AS invoices, SUM(w.total_amount) AS total, "
        "SUM(w.balance) AS open_balance, "
        "(SELECT COUNT(*) FROM fullbay_work_order_lines l JOIN fullbay_work_orders x "
        " ON x.fullbay_id = l.fullbay_id WHERE x.invoice_date = w.invoice_date) AS lines "
        "FROM fullbay_work_orders w WHERE w.deleted_at IS NULL GROUP BY w.invoice_date ORDER BY w.invoice_date",
        engine,
    )
    others = pd.read_sql(
        " UNION ALL ".join(
            f"SELECT '{e.name}' AS endpoint, COUNT(*) AS n FROM {e.table} WHERE deleted_at IS NULL"
            for e in GENERIC_ENDPOINTS
        ),
        engine,
    )
    engine.dispose()
    by_day[["total", "open_balance"]] = by_day[["total", "open_balance"]].astype(float).round(2)
    totals = (
        f"{len(by_day)} days, {int(by_day.invoices.sum())} invoices, {int(by_day.lines.sum())} lines, "
        f"total ${by_day.total.sum():,.2f}, open balance ${by_day.open_balance.sum():,.2f}"
    )
    loaded = ", ".join(f"{row.n} {row.endpoint}" for row in others.itertuples() if row.n)
    return f"{by_day.to_string(index=False)}\n\n{totals}\nother endpoints: {loaded or 'none chosen'}"


def serve_ui(port: int, env: dict[str, str]) -> int:
    """`dg dev` until Ctrl+C. The terminal sends Ctrl+C to both processes:
    dg dev shuts itself down, and we wait for it instead of dying mid-call."""
    # `dg dev` (Dagster's CLI for projects; `dagster dev` is superseded) reads pyproject.toml's [tool.dg]
    command = [str(Path(sys.executable).with_name("dg")), "dev", "--host", "127.0.0.1", "--port", str(port)]
    env = {**env, "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)}  # the project's venv: dg checks it
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        print("Stopped the Dagster UI.")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7, help="how many recent complete days to load")
    parser.add_argument("--invoices-per-day", type=int, default=40)
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".demo", help="where the demo keeps its state")
    parser.add_argument("--ui", action="store_true", help="then start the UI (`dg dev`) on the demo instance")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port (with --ui)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")

    home = args.home.resolve()
    prepare_home(home)
    today = datetime.now(UTC).date()
    last = today - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    config = SimulatorConfig(
        api_key=DEMO_KEY, invoices_per_day=args.invoices_per_day, expected_ip="127.0.0.1", page_size=50
    )
    with Simulator(config) as simulator:
        env = demo_environment(home, simulator.url, first - timedelta(days=30))
        os.environ.update(env)
        print(f"Simulator at {simulator.url}; warehouse {env['DATABASE_URL']}; DAGSTER_HOME {env['DAGSTER_HOME']}")
        print(f"Materializing {first}..{last} ({args.days} days) in one run ...", flush=True)
        if not materialize(first.isoformat(), last.isoformat()):
            print("The run failed; see the log above.", file=sys.stderr)
            return 1
        print("\n" + summary(env["DATABASE_URL"]) + "\n")
        if args.ui:
            print(f"Starting the Dagster UI on http://127.0.0.1:{args.port} (Ctrl+C to stop) ...", flush=True)
            prepare_home(home, daemon=True)
            return serve_ui(args.port, {**os.environ, **env})
    print("Browse the result in the Dagster UI:  make dev   (or: fullbay-demo --ui)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
