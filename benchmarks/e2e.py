"""End to end against dlt: the way a user runs each, same simulator, same scale.

* **project (CLI)**: ``dagster asset materialize -m fullbay_dagster --select '*'
  --partition-range FIRST...LAST`` in a fresh process, a fresh ``DAGSTER_HOME``.
* **project (Lambda)**: ``aws/lambda_handler.handler`` on a scheduled event, which
  materializes the days in-process (``benchmarks/lambda_child.py``).
* **dlt**: ``benchmarks/dlt_pipeline.py`` in its own virtualenv (``.bench/dlt-venv``,
  created here; dlt is never a project dependency): ``RESTClient`` with a
  ``PageNumberPaginator``, a ``merge`` resource on ``primaryKey``, the ``postgres``
  destination normalising the nested lists into child tables.

Every run gets a fresh database and a fresh process; the variants alternate
(round-robin, rotating who goes first). Wall time is process start to exit; memory
is the peak of the summed RSS of the process and all its children (psutil,
polled every 20 ms). The simulator runs in its own process with every page cached
before the first timed run, so neither side pays for generating invoices.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import create_engine, make_url, text

from benchmarks.common import (
    BENCH_KEY,
    ROOT,
    Figure,
    SectionResult,
    fresh_database,
    job_env,
    median,
    simulator_process,
)

DLT_VERSION = "1.31.0"
DLT_VENV = ROOT / ".bench" / "dlt-venv"
FIRST_DAY = date(2025, 3, 1)
AS_OF = "2025-03-20"  # the simulated today: every benchmark day is complete
MIB = 1024 * 1024
# 5 % of calls answered 429 (with and without Retry-After) or 503.
FAULTS = {"fault_rate": 0.05, "fault_kinds": ["429", "429-no-retry-after", "503"], "retry_after": 1}


@dataclass
class Run:
    variant: str
    seconds: float
    peak_mib: float
    rows: dict[str, int]
    cpu_seconds: float = 0.0  # user + system of the process tree
    machine_cpu_seconds: float = 0.0  # every process's, PostgreSQL's and the simulator's too


@dataclass
class Measured:
    seconds: float
    peak_mib: float
    cpu_seconds: float
    machine_cpu_seconds: float
    stdout: str

    def run(self, variant: str, rows: dict[str, int]) -> Run:
        return Run(variant, self.seconds, self.peak_mib, rows, self.cpu_seconds, self.machine_cpu_seconds)


def _machine_busy() -> float:
    """CPU-seconds every core has spent working since boot (not idle, not waiting on I/O,
    not stolen by the hypervisor)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0))


def ensure_dlt_venv(log: Callable[[str], None]) -> Path:
    """``.bench/dlt-venv`` with dlt[postgres] pinned; created once, reused after."""
    python = DLT_VENV / "bin" / "python"
    probe = [str(python), "-c", "import dlt, psycopg2; print(dlt.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)  # noqa: S603
        if found.returncode == 0 and found.stdout.strip() == DLT_VERSION:
            return python
    log(f"[e2e] creating {DLT_VENV.relative_to(ROOT)} with dlt[postgres]=={DLT_VERSION} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "install", "--quiet", f"dlt[postgres]=={DLT_VERSION}"], check=True
    )
    return python


def measure(command: Sequence[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> Measured:
    """Run ``command``: wall seconds, peak summed RSS of its process tree, the CPU time of
    that tree (from the kernel's accounting of waited-for children) and of the whole
    machine meanwhile (the tree's plus the database's and the simulator's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy_before = _machine_busy()
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)  # noqa: S603
        peak = 0
        done = threading.Event()

        def poll() -> None:
            nonlocal peak
            try:
                root = psutil.Process(process.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                total = 0
                try:
                    members = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    return
                for member in members:
                    with suppress(psutil.NoSuchProcess):
                        total += member.memory_info().rss
                peak = max(peak, total)
                done.wait(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            done.set()
            poller.join()
        seconds = time.perf_counter() - started
        busy = _machine_busy() - busy_before
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {code}:\n{stderr[-3000:]}")
    return Measured(seconds, peak / MIB, cpu, busy, stdout)


def _counts(database_url: str, tables: Sequence[str]) -> dict[str, int]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as connection:
            return {name: int(connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()) for name in tables}
    finally:
        engine.dispose()


PROJECT_TABLES = ("fullbay_raw_work_orders", "fullbay_work_orders", "fullbay_work_order_lines")


def run_project_cli(sim_url: str, first: date, last: date, extra_env: dict[str, str] | None = None) -> Run:
    with fresh_database("e2e_cli", migrate_schema=False) as url, tempfile.TemporaryDirectory() as home:
        env = job_env(url, sim_url, first.isoformat())
        env.update({"DAGSTER_HOME": home, **(extra_env or {})})
        command = [
            sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster",
            "--select", "*", "--partition-range", f"{first}...{last}",
        ]  # fmt: skip
        return measure(command, env, timeout=1800).run("project (dagster CLI)", _counts(url, PROJECT_TABLES))


def run_project_lambda(sim_url: str, first: date, last: date) -> Run:
    with fresh_database("e2e_lambda", migrate_schema=False) as url:
        env = job_env(url, sim_url, first.isoformat())
        env.pop("DAGSTER_HOME", None)  # the original design: an ephemeral instance
        env["FULLBAY_REPULL_DAYS"] = str((last - first).days)
        event_time = f"{last + timedelta(days=1)}T06:00:00Z"
        measured = measure([sys.executable, "-m", "benchmarks.lambda_child", event_time], env, timeout=1800)
        return measured.run("project (Lambda, in-process)", _counts(url, PROJECT_TABLES))


def run_dlt(python: Path, sim_url: str, first: date, last: date) -> Run:
    with fresh_database("e2e_dlt", migrate_schema=False) as url, tempfile.TemporaryDirectory() as pipelines:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION__", "RUNTIME__"))}
        env["RUNTIME__LOG_LEVEL"] = "WARNING"
        command = [
            str(python), str(ROOT / "benchmarks" / "dlt_pipeline.py"),
            "--base-url", sim_url, "--key", BENCH_KEY, "--ip", "127.0.0.1",
            "--start", first.isoformat(), "--end", last.isoformat(),
            "--database-url", _with_password(url), "--pipelines-dir", pipelines,
        ]  # fmt: skip
        measured = measure(command, env, timeout=1800, cwd=Path(pipelines))
        tables = ("fullbay.invoices",)
        counts = _counts(url, tables)
        with _engine(url) as engine, engine.connect() as connection:
            children = connection.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'fullbay'")
            ).scalar_one()
        counts["tables in the dataset"] = int(children)
        return measured.run("dlt", counts)


def _with_password(url: str) -> str:
    """dlt insists on a password even where the server trusts local connections."""
    parsed = make_url(url)
    return parsed.set(password=parsed.password or "unused").render_as_string(hide_password=False)


@contextmanager
def _engine(url: str) -> Iterator[Any]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        yield engine
    finally:
        engine.dispose()


def warm(sim_url: str, first: date, last: date) -> int:
    """Fetch every page once, both ways the variants ask for them, so the simulator has
    rendered (and cached) all of them: in 7-day windows (dlt) and in the windows the
    project's spool picks (one day per window for a busy account). The simulator's
    cache must hold both sets (``cache_pages``), or each variant evicts the other's."""
    from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
    from fullbay_dagster.fullbay.spool import fetch_range

    client = FullbayClient(
        FullbayClientConfig(api_key=BENCH_KEY, base_url=sim_url, public_ip="127.0.0.1", max_in_flight=2)
    )
    try:
        with tempfile.TemporaryDirectory() as spool_dir:
            fetch_range(client, first, last, Path(spool_dir))
        return sum(1 for _ in client.iter_invoices(first, last))
    finally:
        client.close()


def cache_pages(days: int, per_day: int, page_size: int) -> int:
    """Simulator cache entries for ``warm``'s two sets of pages, with room to spare."""
    per_day_pages = -(-per_day // page_size)
    seven_day_pages = -(-per_day * 7 // page_size) * -(-days // 7)
    return seven_day_pages + (per_day_pages + 1) * days + 64


@contextmanager
def warm_simulator(days: int, per_day: int, page_size: int) -> Iterator[tuple[str, int]]:
    """The simulator in its own process, every page of ``days`` from FIRST_DAY cached
    (see ``warm``); yields its URL and the invoices it holds."""
    with simulator_process(
        invoices_per_day=per_day, page_size=page_size, as_of=AS_OF, cache_size=cache_pages(days, per_day, page_size)
    ) as sim_url:
        yield sim_url, warm(sim_url, FIRST_DAY, FIRST_DAY + timedelta(days=days - 1))


def serving_floor(sim_url: str, first: date, last: date, window_days: int = 7) -> tuple[float, int, int]:
    """Seconds for a plain ``requests`` loop to pull every (cached) page, without
    parsing them: what the simulator costs either side at most. Returns (seconds,
    pages, bytes)."""
    from fullbay_dagster.fullbay.auth import make_token, today_in

    token = make_token(BENCH_KEY, today_in("UTC"), "127.0.0.1")
    pages = size = 0
    started = time.perf_counter()
    with requests.Session() as session:
        start = first
        while start <= last:
            end = min(last, start + timedelta(days=window_days - 1))
            page, total = 1, 1
            while page <= total:
                params = {"key": BENCH_KEY, "token": token, "startDate": str(start), "endDate": str(end)}
                params["page"] = str(page)
                response = session.get(f"{sim_url}/getInvoices.php", params=params, timeout=60)
                response.raise_for_status()
                if page == 1:
                    total = int(response.json()["totalPages"])
                pages, size, page = pages + 1, size + len(response.content), page + 1
            start = end + timedelta(days=1)
    return time.perf_counter() - started, pages, size


def _sim_config(sim_url: str, **changes: Any) -> None:
    root = sim_url.rsplit("/services", 1)[0]
    requests.post(f"{root}/_sim/config", data=json.dumps(changes), timeout=10).raise_for_status()


def run(
    repeats: int,
    days: int,
    per_day: int,
    page_size: int,
    log: Callable[[str], None],
    *,
    scale_days: int = 2,
    scale_sizes: tuple[int, int] = (2_000, 20_000),
    only: Sequence[str] = ("cli", "lambda", "dlt", "faults", "scale"),
) -> SectionResult:
    result = SectionResult()
    python = ensure_dlt_venv(log)
    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=days - 1)
    runs: list[Run] = []
    with warm_simulator(days, per_day, page_size) as (sim_url, invoices):
        log(f"[e2e] simulator warm: {invoices:,} invoices in {days} days, pages of {page_size}")
        floor = serving_floor(sim_url, first, last)
        log(f"[e2e] simulator serving floor: {floor[1]} pages, {floor[2] / MIB:.0f} MiB in {floor[0]:.2f} s")
        variants: list[tuple[str, Callable[[], Run]]] = [
            (name, function)
            for name, key, function in (
                ("project (dagster CLI)", "cli", lambda: run_project_cli(sim_url, first, last)),
                ("project (Lambda, in-process)", "lambda", lambda: run_project_lambda(sim_url, first, last)),
                ("dlt", "dlt", lambda: run_dlt(python, sim_url, first, last)),
            )
            if key in only
        ]
        for repeat in range(repeats if variants else 0):
            order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
            for name, function in order:
                done = function()
                runs.append(done)
                log(
                    f"[e2e] {repeat + 1}/{repeats} {name}: {done.seconds:.1f} s, {done.peak_mib:.0f} MiB, "
                    f"CPU {done.cpu_seconds:.1f} s (machine {done.machine_cpu_seconds:.1f} s), {done.rows}"
                )
        faulted = paired = None
        if "faults" in only:
            # A clean run right before the faulted one: the machine's load drifts, so
            # the cost of faults is read against its neighbour, not the median.
            paired = run_project_cli(sim_url, first, last)
            log(f"[e2e] clean, paired with the faulted run: {paired.seconds:.1f} s")
            _sim_config(sim_url, **FAULTS)
            try:
                faulted = run_project_cli(sim_url, first, last)
            finally:
                _sim_config(sim_url, fault_rate=0.0)
            faulted.variant = "project (dagster CLI), 5 % faults"
            log(f"[e2e] with faults: {faulted.seconds:.1f} s, peak {faulted.peak_mib:.0f} MiB, {faulted.rows}")

    scale: dict[int, Run] = {}
    scale_last = FIRST_DAY + timedelta(days=scale_days - 1)
    for size in scale_sizes if "scale" in only else ():
        with warm_simulator(scale_days, size, page_size) as (sim_url, _):
            scale[size] = run_project_cli(sim_url, FIRST_DAY, scale_last)
            log(f"[e2e] {scale_days} days x {size:,}: {scale[size].seconds:.1f} s, peak {scale[size].peak_mib:.0f} MiB")

    by_variant: dict[str, list[Run]] = {}
    for done in runs:
        by_variant.setdefault(done.variant, []).append(done)
    wall = {name: median([r.seconds for r in rs]) for name, rs in by_variant.items()}
    peak = {name: median([r.peak_mib for r in rs]) for name, rs in by_variant.items()}
    section = "e2e"
    for name in by_variant:
        spread = ", ".join(f"{r.seconds:.1f}" for r in by_variant[name])
        result.figures.append(Figure(section, f"{name}: wall (median)", wall[name], "s", note=f"runs: {spread}"))
        result.figures.append(
            Figure(
                section,
                f"{name}: peak RSS of the process tree",
                peak[name],
                "MiB",
                note=", ".join(f"{r.peak_mib:.0f}" for r in by_variant[name]),
            )
        )
    cores = psutil.cpu_count() or 1
    for name, rs in by_variant.items():
        tree = median([r.cpu_seconds for r in rs])
        machine = median([r.machine_cpu_seconds for r in rs])
        result.figures.append(
            Figure(
                section,
                f"{name}: CPU seconds, process tree / whole machine",
                tree,
                "s",
                note=f"machine {machine:.1f} s, so at least {machine / cores:.1f} s of wall on {cores} cores; "
                f"{machine / (wall[name] * cores):.0%} of the cores busy",
            )
        )
    for name in ("project (dagster CLI)", "project (Lambda, in-process)"):
        if name not in wall or "dlt" not in wall:
            continue
        speed = wall["dlt"] / wall[name]
        memory = peak[name] / peak["dlt"]
        result.figures.append(Figure(section, f"dlt wall / {name} wall", speed, "x", ">= 3x", speed >= 3))
        result.figures.append(Figure(section, f"{name} peak / dlt peak", memory, "x", "<= 0.5x", memory <= 0.5))
    result.figures.append(
        Figure(
            section,
            "simulator: every page by a plain requests loop (the serving floor)",
            floor[0],
            "s",
            note=f"{floor[1]} pages, {floor[2] / MIB:.0f} MiB, cached, not parsed: the most the simulator adds",
        )
    )
    if faulted is not None and paired is not None:
        clean = paired.seconds
        result.figures.append(
            Figure(
                section,
                "project (dagster CLI) with 5 % faults: wall",
                faulted.seconds,
                "s",
                note=f"{faulted.seconds / clean:.2f}x the clean run just before it ({clean:.1f} s); same rows: "
                f"{faulted.rows == paired.rows}",
            )
        )
    small, large = scale_sizes
    if scale:
        flat = scale[large].peak_mib / scale[small].peak_mib
        result.figures.append(
            Figure(
                section,
                f"peak RSS {large:,} / {small:,} invoices a day (CLI, {scale_days} days)",
                flat,
                "x",
                "<= 1.2x",
                flat <= 1.2,
                note=f"{scale[small].peak_mib:.0f} vs {scale[large].peak_mib:.0f} MiB",
            )
        )
    project_rows = next(iter(rs[0].rows for name, rs in by_variant.items() if name.startswith("project")), {})
    dlt_rows = by_variant["dlt"][0].rows if "dlt" in by_variant else {}
    result.notes += [
        f"Scale: {days} days x {per_day:,} invoices ({invoices:,} invoices), pages of {page_size}; "
        f"{repeats} alternating rounds; simulator pages cached before the first timed run.",
        f"Rows: project {project_rows}; dlt {dlt_rows}.",
        f"Faults: {json.dumps(FAULTS)} on every call of one CLI run, after the clean rounds.",
    ]
    result.data = {
        "wall": wall,
        "peak": peak,
        "runs": [r.__dict__ for r in runs],
        "faulted": faulted.__dict__ if faulted else None,
        "scale": {size: r.__dict__ for size, r in scale.items()},
        "scale_days": scale_days,
        "invoices": invoices,
    }
    return result


if __name__ == "__main__":  # python -m benchmarks.e2e --only cli,dlt --repeats 1 (a quick look; prints only)
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="cli,lambda,dlt,faults,scale")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=2_000)
    args = parser.parse_args()
    section = run(args.repeats, args.days, args.per_day, 100, print, only=args.only.split(","))
    for figure in section.figures:
        print(figure.name, figure.value, figure.target, figure.passed, figure.note)
