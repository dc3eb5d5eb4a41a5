"""Run every benchmark, print figures and ratios with PASS/FAIL, write docs/benchmarks.md.

    python benchmarks/run.py            # full sizes; writes docs/benchmarks.md and docs/benchmarks_*.png
    python benchmarks/run.py --quick    # small sizes, a smoke run; writes nothing unless --write

Targets are reported, never enforced: the exit code is 0 whatever the figures
(non-zero only when a benchmark could not run at all).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import backfill, e2e, load, memory, profile_loader, report, startup
from benchmarks.common import ROOT, SectionResult, load_average, machine_info

SECTIONS = ("e2e", "load", "memory", "backfill", "startup")
SIZES = {
    "full": {
        "load_invoices": 10_000,
        "memory_large": 50_000,
        "memory_small": 5_000,
        "backfill_days": 365,
        "backfill_per_day": 20,
        "backfill_page_size": 500,
        "backfill_alt_page_size": 50,
        "startup_repeats": 5,
        "e2e_repeats": 2,
        "e2e_days": 14,
        "e2e_per_day": 2_000,
        "e2e_scale_days": 2,
        "e2e_scale_sizes": (2_000, 20_000),
    },
    "quick": {
        "load_invoices": 1_000,
        "memory_large": 5_000,
        "memory_small": 500,
        "backfill_days": 30,
        "backfill_per_day": 20,
        "backfill_page_size": 500,
        "backfill_alt_page_size": 50,
        "startup_repeats": 3,
        "e2e_repeats": 1,
        "e2e_days": 3,
        "e2e_per_day": 500,
        "e2e_scale_days": 1,
        "e2e_scale_sizes": (200, 2_000),
    },
}
E2E_PAGE_SIZE = 100


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md (and PNGs) even with --quick")
    parser.add_argument("--no-write", action="store_true", help="never write docs/")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--no-profile", action="store_true", help="skip profiling the loader when a target is missed")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    sizes = SIZES["quick" if args.quick else "full"]
    write = not args.no_write and (args.write or not args.quick)

    started = time.perf_counter()
    machine = machine_info()
    log(
        f"fullbay_dagster benchmarks ({'quick' if args.quick else 'full'}): {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']} at {machine['postgresql_url']}"
    )
    sections: dict[str, SectionResult] = {}
    errors: dict[str, str] = {}
    runners = {
        "load": lambda: load.run(sizes["load_invoices"], log),
        "memory": lambda: memory.run(sizes["memory_large"], sizes["memory_small"], log),
        "backfill": lambda: backfill.run(
            sizes["backfill_days"],
            sizes["backfill_per_day"],
            sizes["backfill_page_size"],
            log,
            alt_page_size=sizes["backfill_alt_page_size"],
        ),
        "startup": lambda: startup.run(sizes["startup_repeats"], log),
        "e2e": lambda: e2e.run(
            sizes["e2e_repeats"],
            sizes["e2e_days"],
            sizes["e2e_per_day"],
            E2E_PAGE_SIZE,
            log,
            scale_days=sizes["e2e_scale_days"],
            scale_sizes=sizes["e2e_scale_sizes"],
        ),
    }
    for name in SECTIONS:
        if name not in only:
            continue
        section_started = time.perf_counter()
        try:
            sections[name] = runners[name]()
        except Exception:
            errors[name] = traceback.format_exc()
            log(f"[{name}] could not run:\n{errors[name]}")
        log(f"[{name}] done in {time.perf_counter() - section_started:.0f} s")

    profile_md = ""
    if "load" in sections and not args.no_profile:
        missed = [f for f in sections["load"].figures if f.passed is False]
        if missed:
            log(f"[profile] {len(missed)} loading target(s) missed: profiling the loader")
            profiled = profile_loader.profile(sizes["load_invoices"], log)
            for label, phase in profiled["phases"].items():
                log(f"  {label}: {phase['total']:.2f} s profiled")
                for group, seconds in phase["groups"]:
                    log(f"    {seconds:7.2f} s {seconds / phase['total']:4.0%}  {group}")
            profile_md = profile_loader.as_markdown(profiled)

    table = report.text_table(sections)
    checked, failed = report.summary(sections)
    print()
    print(table)
    print()
    print(f"{checked - len(failed)} of {checked} targets met" + (f"; missed: {len(failed)}" if failed else ""))
    for figure in failed:
        print(f"  FAIL  {figure.section}: {figure.name} = {report.format_value(figure)} (target {figure.target})")
    for name in errors:
        print(f"  ERROR {name}: the benchmark could not run (see above)")
    elapsed = time.perf_counter() - started
    print(f"total time {elapsed:.0f} s")

    if write and errors:
        print(f"docs/benchmarks.md left as it was: {', '.join(errors)} could not run")
    elif write and sections:
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        path = docs / "benchmarks.md"
        plots = report.write_plots(sections, docs)
        # The end-to-end comparison is its own block of the page: a run of only it
        # replaces that block, and a run without it keeps the block already there.
        e2e_result = sections.pop("e2e", None)
        kept = report.existing_e2e(path)
        if sections:
            settings = {"mode": "quick" if args.quick else "full", "quick": args.quick, **sizes}
            settings["total_seconds"] = round(elapsed)
            settings["load average at end (1/5/15 min)"] = load_average()
            analysis = ""
            if profile_md:
                analysis = "### Loader profile (cProfile)\n\n" + profile_md
            table = report.text_table(sections)
            general_plots = {name: plot for name, plot in plots.items() if name != "e2e"}
            report.write_markdown(path, sections, machine, settings, general_plots, analysis, table)
            if kept and e2e_result is None:
                report.splice_e2e(path, kept)
        if e2e_result is not None:
            report.splice_e2e(path, report.e2e_block(e2e_result, machine, plots.get("e2e")))
        print(f"wrote {path} and {', '.join(p.name for p in plots.values())}")
    elif args.quick and not args.no_write:
        print("--quick: docs/benchmarks.md left as it was (add --write to overwrite it)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
