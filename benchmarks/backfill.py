"""A year's backfill in one run vs one day at a time.

Both sides talk to the simulator (its own process, ``--latency 0.1``: 100 ms per
request) with the same client pacing (adaptive, floor ``min_interval`` at its
default, 0 s), and write with the same loader into a fresh database.

* single run: the real ``fullbay_daily_job`` over the whole range (range tags) in a
  fresh process; the raw step fetches 7-day windows, ``max_in_flight`` (2) at once,
  then loads each day in its own transactions. Timed: ``execute_in_process``.
* one day at a time (the baseline): one ``FullbayClient`` with ``window_days=1`` and
  ``max_in_flight=1``; for each day in turn, fetch the day (spooled like the asset
  does), ``load_raw_day`` then ``build_work_orders_day``. No Dagster, so none of its
  per-run overhead is charged to the baseline.

The resulting tables must be identical (checksums without bookkeeping columns).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.common import (
    BENCH_KEY,
    Figure,
    SectionResult,
    fresh_database,
    job_env,
    run_child,
    simulator_process,
)
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import raw_work_orders, work_order_lines, work_orders

TARGET_SPEEDUP = 4.0
LATENCY = 0.1
FIRST_DAY = date(2025, 1, 1)
RAW_EXCLUDE = ["last_seen_at", "last_run_id", "first_seen_at", "last_changed_at", "fetched_at"]
WO_EXCLUDE = ["updated_at", "ingestion_timestamp", "ingestion_source"]


def _checksums(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        return {
            "raw": loader.table_checksum(engine, raw_work_orders, exclude=RAW_EXCLUDE),
            "work_orders": loader.table_checksum(engine, work_orders, exclude=WO_EXCLUDE),
            "lines": loader.table_checksum(engine, work_order_lines),
            "rows": str(loader.count_live_rows(engine, work_orders, FIRST_DAY, date.max)),
        }
    finally:
        engine.dispose()


def _resource_defaults() -> dict[str, Any]:
    from dataclasses import fields

    from fullbay_dagster.fullbay.client import FullbayClientConfig

    defaults = {f.name: f.default for f in fields(FullbayClientConfig)}
    return {name: defaults[name] for name in ("min_interval", "max_in_flight")}


def single_run(days: int, per_day: int, page_size: int, as_of: str) -> dict[str, Any]:
    last = FIRST_DAY + timedelta(days=days - 1)
    with (
        simulator_process(invoices_per_day=per_day, page_size=page_size, as_of=as_of, latency=LATENCY) as base,
        fresh_database("backfill_single") as url,
    ):
        env = job_env(url, base, FIRST_DAY.isoformat())
        line, wall = run_child("benchmarks.job_child", [FIRST_DAY.isoformat(), last.isoformat()], env, timeout=1800)
        report = json.loads(line)
        if not report["success"]:
            raise RuntimeError(f"the {days}-day backfill run failed: {report['errors']}")
        raw_meta = report["metadata"].get("raw_work_orders", {})
        return {
            "seconds": report["run_seconds"],
            "wall_seconds": wall,
            "requests": raw_meta.get("run_api_requests"),
            "raw_seconds": raw_meta.get("run_duration_seconds"),
            "work_orders_seconds": report["metadata"].get("work_orders", {}).get("run_duration_seconds"),
            "checksums": _checksums(url),
        }


def day_by_day(days: int, per_day: int, page_size: int, as_of: str) -> dict[str, Any]:
    with (
        simulator_process(invoices_per_day=per_day, page_size=page_size, as_of=as_of, latency=LATENCY) as base,
        fresh_database("backfill_daily") as url,
    ):
        defaults = _resource_defaults()
        config = FullbayClientConfig(api_key=BENCH_KEY, base_url=base, public_ip="127.0.0.1")
        config = replace(config, min_interval=defaults["min_interval"], window_days=1, max_in_flight=1)
        engine = make_engine(url)
        zone = ZoneInfo("UTC")
        try:
            started = time.perf_counter()
            client = FullbayClient(config)
            try:
                for offset in range(days):
                    day = FIRST_DAY + timedelta(days=offset)
                    with tempfile.TemporaryDirectory() as spool_dir:
                        spooled = fetch_range(client, day, day, Path(spool_dir))
                        loader.load_raw_day(engine, day, spooled.checked(day), run_id="bench-daily")
                    loader.build_work_orders_day(engine, day, zone=zone, source="bench-daily")
            finally:
                client.close()
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
        return {"seconds": seconds, "requests": client.stats.requests, "checksums": _checksums(url)}


def run(days: int, per_day: int, page_size: int, log: Any, alt_page_size: int | None = None) -> SectionResult:
    result = SectionResult()
    as_of = (FIRST_DAY + timedelta(days=days + 30)).isoformat()
    defaults = _resource_defaults()
    log(
        f"[backfill] {days} days x {per_day} invoices, simulator latency {LATENCY}s, page size {page_size}, "
        f"min_interval {defaults['min_interval']}s, max_in_flight {defaults['max_in_flight']}"
    )
    log("[backfill] single run (fullbay_daily_job over the range, fresh process)")
    single = single_run(days, per_day, page_size, as_of)
    log(f"  {single['seconds']:.1f}s, {single['requests']} requests")
    log("[backfill] one day at a time, sequential, same client and loader")
    daily = day_by_day(days, per_day, page_size, as_of)
    log(f"  {daily['seconds']:.1f}s, {daily['requests']} requests")
    alt = None
    if alt_page_size:
        log(f"[backfill] single run again with page size {alt_page_size} (informational)")
        alt = single_run(days, per_day, alt_page_size, as_of)
        log(f"  {alt['seconds']:.1f}s, {alt['requests']} requests")
    speedup = daily["seconds"] / single["seconds"]
    same = single["checksums"] == daily["checksums"]
    result.data = {
        "days": days,
        "per_day": per_day,
        "page_size": page_size,
        "latency": LATENCY,
        "min_interval": defaults["min_interval"],
        "max_in_flight": defaults["max_in_flight"],
        "single": {k: v for k, v in single.items() if k != "checksums"},
        "daily": {k: v for k, v in daily.items() if k != "checksums"},
        "alt": None
        if alt is None
        else {"page_size": alt_page_size, **{k: v for k, v in alt.items() if k != "checksums"}},
        "same_tables": same,
        "rows": single["checksums"]["rows"],
    }
    interval = defaults["min_interval"]
    floor_single = max(0, single["requests"] - 1) * interval
    floor_daily = max(0, daily["requests"] - 1) * interval
    result.notes += [
        f"single run: fullbay_daily_job over {FIRST_DAY}..{FIRST_DAY + timedelta(days=days - 1)} (range tags) in a "
        "fresh process, timed around execute_in_process (Python and Dagster imports excluded: "
        f"{single['wall_seconds'] - single['seconds']:.1f} s more as process wall time).",
        "one day at a time: one FullbayClient (window_days=1, max_in_flight=1, the resource's min_interval), for "
        "each day in turn fetch_range(day, day) into a spool directory, load_raw_day, build_work_orders_day; no "
        "Dagster, so it is charged none of Dagster's per-run overhead.",
        f"Pacing floor (min_interval {interval} s between request starts): the single run's {single['requests']} "
        f"requests need >= {floor_single:.1f} s, the day-by-day {daily['requests']} requests >= {floor_daily:.1f} s; "
        f"with no other cost the best ratio would be {floor_daily / max(floor_single, 1e-9):.1f}x. Requests per "
        f"window depend on the page size ({per_day * 7} invoices per 7-day window).",
    ]
    if alt is not None:
        result.notes.append(
            f"With the contract's example page size ({alt_page_size}), a 7-day window of {per_day * 7} invoices takes "
            f"{-(-per_day * 7 // alt_page_size)} pages: {alt['requests']} requests, {alt['seconds']:.1f} s."
        )
    f = result.figures
    f.append(
        Figure(
            "backfill",
            f"{days} days in one run",
            single["seconds"],
            "s",
            note=f"{single['requests']} requests; fetch+raw load {single['raw_seconds']}s, "
            f"work orders {single['work_orders_seconds']}s",
        )
    )
    f.append(
        Figure("backfill", f"{days} days one at a time", daily["seconds"], "s", note=f"{daily['requests']} requests")
    )
    f.append(
        Figure(
            "backfill",
            "one run speed-up",
            speedup,
            "x",
            f">= {TARGET_SPEEDUP:g}",
            speedup >= TARGET_SPEEDUP,
        )
    )
    f.append(
        Figure(
            "backfill",
            "identical tables (raw, work orders, lines)",
            "yes" if same else "NO",
            target="yes",
            passed=same,
            note=f"{single['checksums']['rows']} work orders",
        )
    )
    if alt is not None:
        alt_same = alt["checksums"] == daily["checksums"]
        f.append(
            Figure(
                "backfill",
                f"one run speed-up at page size {alt_page_size}",
                daily["seconds"] / alt["seconds"],
                "x",
                note=f"informational; {alt['requests']} requests, {alt['seconds']:.1f} s, "
                f"tables {'identical' if alt_same else 'DIFFERENT'}",
            )
        )
    return result
