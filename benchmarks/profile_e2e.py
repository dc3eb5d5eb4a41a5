"""Where the end-to-end run spends its time: ``dagster asset materialize`` (every
process of it, every thread) sampled by py-spy, against the simulator in its own
process with every page cached first.

    python -m benchmarks.profile_e2e --days 14 --per-day 2000

Prints the CPU samples grouped two ways: by the innermost project function on the
stack (what our code caused) and by the innermost frame (where the CPU actually
was). Needs ``py-spy`` (``pip install py-spy``; root or ptrace rights).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, fresh_database, job_env
from benchmarks.e2e import FIRST_DAY, warm_simulator

_FRAME = re.compile(r"^(?P<function>[^ ]+) \((?P<path>[^:)]+)(?::\d+)?\)$")


def _where(path: str) -> str:
    if "fullbay_dagster/" in path:
        return path.split("fullbay_dagster/", 1)[1]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    return Path(path).name


def summarise(raw: Path, top: int = 25, main_only: bool = False) -> str:
    """py-spy's raw (collapsed) stacks -> two tables of sample shares."""
    by_project: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        # "process A;process B;thread (pid): name;frames...": a step's process is nested in the CLI's
        thread = next((part for part in stack.split(";") if part.startswith("thread (")), "")
        if main_only and "MainThread" not in thread:
            continue
        total += count
        frames = [m for m in (_FRAME.match(f) for f in stack.split(";")) if m]
        project = [f for f in frames if "fullbay_dagster/" in f.group("path")]
        owner = (
            f"{_where(project[-1].group('path'))}:{project[-1].group('function')}"
            if project
            else "(no project frame: Dagster, start-up, imports)"
        )
        by_project[owner] += count
        if frames:
            leaf = frames[-1]
            by_leaf[f"{_where(leaf.group('path'))}:{leaf.group('function')}"] += count
    lines = [f"{total} samples", "", "by innermost project function:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in by_project.most_common(top)]
    lines += ["", "by innermost frame:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in by_leaf.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--idle", action="store_true", help="sample waiting threads too (wall time: database and network waits)"
    )
    parser.add_argument("--main-thread", action="store_true", help="only the main thread (the critical path)")
    parser.add_argument(
        "--gil", action="store_true", help="only the thread holding the interpreter lock (where Python's one core goes)"
    )
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    with (
        warm_simulator(args.days, args.per_day, args.page_size) as (sim_url, _),
        fresh_database("profile_e2e", migrate_schema=False) as url,
        tempfile.TemporaryDirectory() as home,
    ):
        env = job_env(url, sim_url, first.isoformat())
        env["DAGSTER_HOME"] = home
        raw = args.raw or Path(home) / "stacks.txt"
        command = [
            spy, "record", "--subprocesses", "--threads", "--format", "raw", "--rate", "100",
            "--output", str(raw), *(["--idle"] if args.idle else []), *(["--gil"] if args.gil else []), "--",
            sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster",
            "--select", "*", "--partition-range", f"{first}...{last}",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        print(f"exit {done.returncode}, wall {time.perf_counter() - started:.1f} s (under the profiler)")
        if done.returncode != 0:
            print(done.stderr[-3000:])
        print(summarise(raw, main_only=args.main_thread))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
