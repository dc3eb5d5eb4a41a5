"""Peak resident memory of materializing one day, large vs small.

For each day size: the simulator in its own process (``--page-size 500
--cache-size 4``), a fresh database, and a fresh Python process that runs the real
``fullbay_daily_job`` for one partition and reports its own RSS high-water mark
(VmHWM, the same as ``ru_maxrss``). The ratio compares the two peaks; the increase
over the process's RSS just before the run (Python + Dagster + definitions loaded)
is shown too, since that fixed base makes any peak ratio look smaller.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from benchmarks.common import (
    Figure,
    SectionResult,
    fresh_database,
    job_env,
    run_child,
    simulator_process,
)
from benchmarks.load import DAY

TARGET_RATIO = 1.5
PAGE_SIZE = 500
CACHE_SIZE = 4


def measure(per_day: int, log: Any) -> dict[str, Any]:
    as_of = (DAY + timedelta(days=30)).isoformat()
    with (
        simulator_process(invoices_per_day=per_day, page_size=PAGE_SIZE, as_of=as_of, cache_size=CACHE_SIZE) as base,
        fresh_database(f"mem{per_day}") as url,
    ):
        env = job_env(url, base, DAY.isoformat())
        line, wall = run_child("benchmarks.job_child", [DAY.isoformat(), DAY.isoformat()], env, timeout=3600)
    report = json.loads(line)
    report["wall_seconds"] = wall
    if not report["success"]:
        raise RuntimeError(f"the {per_day}-invoice run failed: {report['errors']}")
    rows = report["metadata"].get("work_orders", {}).get("dagster/row_count")
    log(
        f"  {per_day} invoices: peak {report['hwm_kib'] / 1024:.0f} MiB "
        f"(before run {report['rss_before_run_kib'] / 1024:.0f} MiB), run {report['run_seconds']:.1f}s, "
        f"{rows} work orders"
    )
    return report


def run(large: int, small: int, log: Any) -> SectionResult:
    result = SectionResult()
    reports = {}
    for per_day in (small, large):
        log(f"[memory] one day of {per_day} invoices through fullbay_daily_job in a fresh process")
        reports[per_day] = measure(per_day, log)
    peak = {n: r["hwm_kib"] / 1024 for n, r in reports.items()}
    base = {n: r["rss_before_run_kib"] / 1024 for n, r in reports.items()}
    growth = {n: peak[n] - base[n] for n in reports}
    ratio = peak[large] / peak[small]
    result.data = {"peak_mib": peak, "base_mib": base, "reports": reports, "large": large, "small": small}
    for n in (small, large):
        result.figures.append(
            Figure(
                "memory",
                f"peak RSS, {n} invoices",
                peak[n],
                "MiB",
                note=f"+{growth[n]:.0f} MiB over {base[n]:.0f} MiB before the run; "
                f"run {reports[n]['run_seconds']:.1f} s",
            )
        )
    result.figures.append(
        Figure("memory", f"peak RSS {large} / {small}", ratio, "x", f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO)
    )
    result.figures.append(
        Figure(
            "memory",
            f"growth over base {large} / {small}",
            growth[large] / max(growth[small], 1.0),
            "x",
            note="informational: memory the run itself added",
        )
    )
    return result
