"""Where the loader spends its time: cProfile of a first load and a reload, with
time grouped by what it was spent on. Run by ``run.py`` when a loading target is
missed; on its own: ``python -m benchmarks.profile_loader [--invoices N]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import fresh_database
from benchmarks.load import DAY, UTC_ZONE, prepare_days
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.engine import make_engine

# (label, test on (filename, function name)); the first match wins, in this order.
CATEGORIES: list[tuple[str, Any]] = [
    (
        "database round trips (psycopg2 execute/fetch, server time included)",
        lambda f, n: "psycopg2" in f or "psycopg2" in n or n.startswith(("<method 'execute", "<method 'copy")),
    ),
    ("COPY text formatting (warehouse/bulk.py)", lambda f, n: f.endswith("bulk.py")),
    ("JSON encoding/decoding (json module)", lambda f, n: "json" in f or "<method 'encode' of '_json" in n),
    ("content hashing (sha256)", lambda f, n: "sha256" in n or "hexdigest" in n or "hashlib" in f),
    ("record normalisation and checks (records.py)", lambda f, n: f.endswith("records.py")),
    ("regular expressions (re)", lambda f, n: "re.Pattern" in n or f.endswith(("re/__init__.py", "re.py"))),
    ("decimal / datetime parsing", lambda f, n: "_strptime" in f or "decimal" in f.lower() or "strptime" in n),
    ("SQLAlchemy (compile, bind/result processing, pool)", lambda f, n: "sqlalchemy" in f),
    ("loader.py itself", lambda f, n: f.endswith("loader.py")),
]


def categorise(stats: pstats.Stats) -> tuple[float, list[tuple[str, float]]]:
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        total += tottime
        label = next((label for label, test in CATEGORIES if test(filename, name)), "other Python")
        totals[label] = totals.get(label, 0.0) + tottime
    return total, sorted(totals.items(), key=lambda item: -item[1])


def profile(per_day: int, log: Any = print) -> dict[str, Any]:
    first, reload, changed = prepare_days(per_day, log)
    out: dict[str, Any] = {"changed_fraction": changed, "phases": {}}
    with fresh_database("profile") as url:
        engine = make_engine(url)
        try:
            for label, day in (("first load", first), ("reload", reload)):
                profiler = cProfile.Profile()
                profiler.enable()
                loader.load_raw_day(engine, DAY, day.records, run_id="profile", now=datetime.now(UTC))
                loader.build_work_orders_day(engine, DAY, zone=UTC_ZONE, source="profile")
                profiler.disable()
                stats = pstats.Stats(profiler)
                total, groups = categorise(stats)
                top = io.StringIO()
                pstats.Stats(profiler, stream=top).sort_stats("tottime").print_stats(15)
                cumulative = io.StringIO()
                pstats.Stats(profiler, stream=cumulative).sort_stats("cumulative").print_stats(
                    r"loader\.py|records\.py", 20
                )
                out["phases"][label] = {
                    "total": total,
                    "groups": groups,
                    "top": _trim(top.getvalue()),
                    "cumulative": _trim(cumulative.getvalue()),
                }
        finally:
            engine.dispose()
    return out


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())[:6000]


def as_markdown(result: dict[str, Any]) -> str:
    parts = []
    for label, phase in result["phases"].items():
        parts += [
            f"**{label}** (profiled: {phase['total']:.2f} s of own time; profiling adds overhead):",
            "",
            "| spent on | seconds | share |",
            "|---|---|---|",
        ]
        parts += [f"| {name} | {seconds:.2f} | {seconds / phase['total']:.0%} |" for name, seconds in phase["groups"]]
        parts += ["", "<details><summary>top functions by own time</summary>", "", "```", phase["top"], "```", ""]
        parts += ["</details>", ""]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = profile(args.invoices)
    for label, phase in result["phases"].items():
        print(f"\n== {label}: {phase['total']:.2f} s profiled")
        for name, seconds in phase["groups"]:
            print(f"  {seconds:7.2f} s  {seconds / phase['total']:4.0%}  {name}")
        print(phase["top"])
        print(phase["cumulative"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
