"""Run the real Dagster job over a partition range in this (fresh) process and print
one JSON line: success, timings, and this process's peak resident memory.

    python -m benchmarks.job_child FIRST_DAY LAST_DAY

The environment (DATABASE_URL, FULLBAY_API_KEY, FULLBAY_API_BASE_URL,
FULLBAY_PUBLIC_IP, FULLBAY_START_DATE) is set by the parent.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def vm_status() -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS in KiB from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0])
    return values


def main(argv: list[str]) -> int:
    first, last = argv[0], argv[1]
    started = time.perf_counter()
    from dagster import DagsterInstance

    from fullbay_dagster.defs.definitions import JOB_NAME, defs
    from fullbay_dagster.defs.partitions import range_tags

    job = defs.resolve_job_def(JOB_NAME)
    ready = time.perf_counter()
    before = vm_status()
    tags = range_tags(first, last)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    ended = time.perf_counter()
    metadata: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        # One event per day: day counts are summed; run_* figures (the same on every
        # day) are kept once, without the prefix, as the readers of this report expect.
        materialization = event.materialization
        merged = metadata.setdefault(materialization.asset_key.to_user_string(), {})
        for key, value in materialization.metadata.items():
            if not isinstance(value.value, (int, float, str)) or isinstance(value.value, bool):
                continue
            if key.startswith("run_"):
                merged[key.removeprefix("run_")] = value.value
            elif isinstance(value.value, int):
                merged[key] = int(merged.get(key, 0)) + value.value  # type: ignore[call-overload]
            else:
                merged[key] = value.value
    errors = [
        str(event.message)[:2000]
        for event in result.all_events
        if event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")
    ]
    after = vm_status()
    print(
        json.dumps(
            {
                "success": result.success,
                "import_seconds": ready - started,
                "run_seconds": ended - ready,
                "rss_before_run_kib": before["VmRSS"],
                "hwm_before_run_kib": before["VmHWM"],
                "hwm_kib": after["VmHWM"],
                "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "metadata": metadata,
                "errors": errors,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
