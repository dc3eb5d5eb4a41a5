"""Whose CPU each loading step uses: this Python process's or PostgreSQL's.

    python -m benchmarks.cpu_split --days 4 --per-day 2000

Fetches the days into a spool first (not measured), then lands them
(``load_raw_day``) and builds them (``build_work_orders_day``) one day at a time,
and prints for each step its wall time, the CPU seconds of this process (every
thread) and of the PostgreSQL server's processes (read from /proc by psutil, so
the server must run on this machine). A step whose Python CPU is close to its
wall time is bound by Python's one thread at a time; what the server does beside
it is what background work can hide.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BENCH_KEY, fresh_database
from benchmarks.e2e import FIRST_DAY, warm_simulator
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.loader import build_work_orders_day, load_raw_day


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:  # a backend that ended
        return 0.0
    return times.user + times.system


def _server_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process, by pid."""
    return {p.pid: _cpu(p) for p in psutil.process_iter(["username"]) if p.info["username"] == "postgres"}


def measure(name: str, days: list[date], step: Callable[[date], object]) -> str:
    me = psutil.Process()
    server_before, python_before = _server_cpu(), _cpu(me)
    started = time.perf_counter()
    for day in days:
        step(day)
    wall = time.perf_counter() - started
    python = _cpu(me) - python_before
    server = sum(seconds - server_before.get(pid, 0.0) for pid, seconds in _server_cpu().items())
    return f"{name:6} wall {wall:6.2f} s   Python CPU {python:6.2f} s   PostgreSQL CPU {server:6.2f} s"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    days = [first + timedelta(days=n) for n in range(args.days)]
    with (
        warm_simulator(args.days, args.per_day, args.page_size) as (sim_url, _),
        fresh_database("cpu_split") as url,
        tempfile.TemporaryDirectory() as spool_dir,
    ):
        client = FullbayClient(FullbayClientConfig(api_key=BENCH_KEY, base_url=sim_url, public_ip="127.0.0.1"))
        spool = fetch_range(client, first, last, Path(spool_dir))
        engine = make_engine(url)
        try:
            print(f"{args.days} days x {args.per_day} invoices")
            print(measure("raw", days, lambda day: load_raw_day(engine, day, spool.checked(day))))
            zone = ZoneInfo("UTC")
            print(measure("build", days, lambda day: build_work_orders_day(engine, day, zone=zone, source="bench")))
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
