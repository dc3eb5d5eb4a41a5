"""Loading one simulated day: the project's loader vs plain COPY vs row-by-row INSERTs.

Throughput is *day rows per second*: (invoices + their lines in the day's answer)
divided by the wall time of the method's database work. The numerator is the same
for every method and for the first load and the reload, so the ratios compare the
time each method needs to bring the warehouse in line with the same answer.

* loader: ``load_raw_day`` + ``build_work_orders_day`` on the raw API records
  (hashing and normalisation are part of the loader and so are timed).
* COPY (the ceiling): rows for copies of the three tables (``LIKE ... INCLUDING ALL``
  in schema ``bench``) normalised, hashed and serialised to COPY text beforehand;
  only the COPY statements and the commit are timed. Reload: TRUNCATE + COPY all.
* row-by-row (the original Lambda): one ``cursor.execute`` INSERT per invoice into
  ``fullbay_work_orders`` and one per line into ``fullbay_work_order_lines``, commit at
  the end; parameters prepared beforehand. Reload: one INSERT .. ON CONFLICT DO
  UPDATE per invoice and per line (it has no change detection).

Each method gets a fresh database.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2
from psycopg2.extras import Json
from sqlalchemy import MetaData, Table, event

from benchmarks.common import SEED, Figure, SectionResult, fresh_database
from fullbay_dagster.fullbay.observe import Observer
from fullbay_dagster.fullbay.records import content_hash, normalise_invoice
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import raw_work_orders, work_order_lines, work_orders

DAY = date(2025, 3, 12)
FIRST_AS_OF = DAY + timedelta(days=1)
UTC_ZONE = ZoneInfo("UTC")
TABLES = (raw_work_orders.name, work_orders.name, work_order_lines.name)
TARGET_VS_COPY = 0.5
TARGET_VS_ROW_BY_ROW = 20.0
MODEL_RTT = 0.0005  # a database across a network (Lambda/ECS to RDS), for the modelled figure only
# Bookkeeping columns that legitimately differ between methods.
RAW_BOOKKEEPING = ["first_seen_at", "last_seen_at", "last_changed_at", "last_run_id", "fetched_at"]
WO_BOOKKEEPING = ["updated_at", "ingestion_timestamp", "ingestion_source"]


@dataclass
class Day:
    """One day's answer and everything derived from it outside the timed sections."""

    as_of: date
    records: list[dict[str, Any]]
    hashes: dict[str, str]
    raw_rows: list[dict[str, Any]]
    wo_rows: list[dict[str, Any]]
    line_rows: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.records) + len(self.line_rows)


def prepare_day(per_day: int, as_of: date, now: datetime) -> Day:
    records = invoices_for_day(SEED, DAY, per_day, as_of)
    hashes, raw_rows, wo_rows, line_rows = {}, [], [], []
    for record in records:
        digest = content_hash(record)
        normalised = normalise_invoice(record, UTC_ZONE)
        key = normalised.work_order["fullbay_id"]
        hashes[key] = digest
        raw_rows.append(
            {
                "fullbay_id": key,
                "invoice_date": DAY,
                "raw_data": record,
                "content_hash": digest,
                "first_seen_at": now,
                "last_seen_at": now,
                "last_changed_at": now,
                "deleted_at": None,
                "last_run_id": "bench",
                "fetched_at": now,
            }
        )
        wo_rows.append(
            {
                **normalised.work_order,
                "updated_at": now,
                "raw_data": record,
                "content_hash": digest,
                "ingestion_timestamp": now,
                "ingestion_source": "bench",
                "deleted_at": None,
            }
        )
        line_rows.extend(normalised.lines)
    return Day(as_of, records, hashes, raw_rows, wo_rows, line_rows)


def prepare_days(per_day: int, log: Any) -> tuple[Day, Day, float]:
    """The first answer and a later one in which about 10 % of the invoices changed
    (the simulated "today" moved on, so some balances were paid down)."""
    now = datetime.now(UTC)
    first = prepare_day(per_day, FIRST_AS_OF, now)
    best: tuple[float, Day] | None = None
    for offset in range(2, 30):
        candidate = prepare_day(per_day, FIRST_AS_OF + timedelta(days=offset - 1), now)
        changed = sum(1 for key, digest in candidate.hashes.items() if first.hashes.get(key) != digest)
        fraction = changed / max(1, len(candidate.hashes))
        if best is None or abs(fraction - 0.10) < abs(best[0] - 0.10):
            best = (fraction, candidate)
        if fraction >= 0.10:
            break
    assert best is not None
    log(f"  reload answer: as_of {best[1].as_of} ({best[0]:.1%} of invoices changed by content hash)")
    return first, best[1], best[0]


# ----------------------------------------------------------------------------- loader


def run_loader(url: str, first: Day, reload: Day) -> dict[str, Any]:
    engine = make_engine(url)
    out: dict[str, Any] = {}
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1  # one round trip (an insertmanyvalues page of up to 1000 rows is one statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for label, day in (("first", first), ("reload", reload)):
            statements[0] = 0
            started = time.perf_counter()
            raw = loader.load_raw_day(engine, DAY, day.records, run_id=f"bench-{label}", now=datetime.now(UTC))
            middle = time.perf_counter()
            built = loader.build_work_orders_day(engine, DAY, zone=UTC_ZONE, source="bench")
            ended = time.perf_counter()
            out[label] = {
                "seconds": ended - started,
                "raw_seconds": middle - started,
                "build_seconds": ended - middle,
                "statements": statements[0] + 2,  # + the two commits
                "raw_counts": raw.as_dict(),
                "build_counts": built.as_dict(),
            }
        out["checksums"] = _checksums(engine, None)
    finally:
        engine.dispose()
    return out


# ----------------------------------------------------------------------------- COPY


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    elif isinstance(value, (datetime, date)):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    else:
        value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_buffer(rows: list[dict[str, Any]], columns: list[tuple[str, str]], now: datetime) -> bytes:
    """COPY text format for ``columns`` (name, data type); columns the rows lack get
    ``now`` for timestamps and NULL otherwise."""
    defaults = {name: (now if "timestamp" in kind else None) for name, kind in columns}
    names = [name for name, _ in columns]
    out = io.StringIO()
    for row in rows:
        out.write("\t".join(_copy_text(row.get(name, defaults[name])) for name in names))
        out.write("\n")
    return out.getvalue().encode()


def _columns(cursor: Any, schema: str, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    return [(name, kind) for name, kind in cursor.fetchall()]


def run_copy(url: str, first: Day, reload: Day) -> dict[str, Any]:
    out: dict[str, Any] = {}
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE SCHEMA bench")
            for table in TABLES:
                cursor.execute(f"CREATE TABLE bench.{table} (LIKE public.{table} INCLUDING ALL)")
            connection.commit()
            columns = {table: _columns(cursor, "bench", table) for table in TABLES}
        for label, day in (("first", first), ("reload", reload)):
            now = datetime.now(UTC)
            buffers = {
                raw_work_orders.name: _copy_buffer(day.raw_rows, columns[raw_work_orders.name], now),
                work_orders.name: _copy_buffer(day.wo_rows, columns[work_orders.name], now),
                work_order_lines.name: _copy_buffer(day.line_rows, columns[work_order_lines.name], now),
            }
            started = time.perf_counter()
            with connection.cursor() as cursor:
                if label == "reload":
                    cursor.execute("TRUNCATE " + ", ".join(f"bench.{t}" for t in TABLES))
                for table in TABLES:
                    names = ", ".join(name for name, _ in columns[table])
                    cursor.copy_expert(f"COPY bench.{table} ({names}) FROM STDIN", io.BytesIO(buffers[table]))
            connection.commit()
            out[label] = {"seconds": time.perf_counter() - started, "bytes": sum(len(b) for b in buffers.values())}
    finally:
        connection.close()
    engine = make_engine(url)
    try:
        out["checksums"] = _checksums(engine, "bench")
    finally:
        engine.dispose()
    return out


# ----------------------------------------------------------------------------- row by row


def _adapt(value: Any) -> Any:
    return Json(value) if isinstance(value, (dict, list)) else value


def _statements(wo_columns: list[str], line_columns: list[str], upsert: bool) -> tuple[str, str]:
    def insert(table: str, columns: list[str], keys: list[str]) -> str:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        if upsert:
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
            sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        return sql

    return (
        insert(work_orders.name, wo_columns, ["fullbay_id"]),
        insert(work_order_lines.name, line_columns, ["fullbay_id", "line_type", "source_key"]),
    )


def run_row_by_row(url: str, first: Day, reload: Day) -> dict[str, Any]:
    out: dict[str, Any] = {}
    connection = psycopg2.connect(url)
    try:
        for label, day in (("first", first), ("reload", reload)):
            wo_columns = list(day.wo_rows[0])
            line_columns = list(day.line_rows[0])
            wo_sql, line_sql = _statements(wo_columns, line_columns, upsert=label == "reload")
            lines_by_invoice: dict[str, list[tuple[Any, ...]]] = {}
            for line in day.line_rows:
                lines_by_invoice.setdefault(line["fullbay_id"], []).append(tuple(_adapt(line[c]) for c in line_columns))
            work = [
                (tuple(_adapt(row[c]) for c in wo_columns), lines_by_invoice.get(row["fullbay_id"], []))
                for row in day.wo_rows
            ]
            statements = 0
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for params, line_params in work:
                    cursor.execute(wo_sql, params)
                    for one in line_params:
                        cursor.execute(line_sql, one)
                    statements += 1 + len(line_params)
            connection.commit()
            out[label] = {"seconds": time.perf_counter() - started, "statements": statements + 1}  # + commit
    finally:
        connection.close()
    return out


# ----------------------------------------------------------------------------- checks and figures


def _checksums(engine: Any, schema: str | None) -> dict[str, str]:
    """Digests of the three tables (in ``schema``, or the project's own), bookkeeping left out."""
    metadata = MetaData()
    excluded = {raw_work_orders.name: RAW_BOOKKEEPING, work_orders.name: WO_BOOKKEEPING}
    result = {}
    for table in (raw_work_orders, work_orders, work_order_lines):
        target: Table = table.to_metadata(metadata, schema=schema) if schema else table
        result[table.name] = loader.table_checksum(engine, target, exclude=excluded.get(table.name, []))
    return result


def round_trip_seconds(url: str, count: int = 500) -> float:
    """Median wall time of ``SELECT 1`` on one connection: the per-statement floor."""
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            times = []
            for _ in range(count):
                started = time.perf_counter()
                cursor.execute("SELECT 1")
                cursor.fetchone()
                times.append(time.perf_counter() - started)
    finally:
        connection.close()
    return sorted(times)[len(times) // 2]


def observation_seconds(records: list[dict[str, Any]], sample: bool = True) -> float:
    """What schema observation (``fullbay_schema_fields``) costs for one day: the walk
    the work-orders step does over the invoices it reads (sampled as the loader
    does, or every invoice)."""
    observer = Observer() if sample else Observer(observe_all=len(records))
    started = time.perf_counter()
    for record in records:
        observer.offer(record)
    observer.observed()
    return time.perf_counter() - started


def run(per_day: int, log: Any) -> SectionResult:
    result = SectionResult()
    log(f"[load] generating and preparing {per_day} invoices (not timed)")
    first, reload, changed = prepare_days(per_day, log)
    rows = first.rows
    log(f"  {len(first.records)} invoices + {len(first.line_rows)} lines = {rows} day rows")
    methods: dict[str, dict[str, Any]] = {}
    for name, function in (("loader", run_loader), ("COPY", run_copy), ("row-by-row", run_row_by_row)):
        log(f"[load] {name}: fresh database, first load then reload")
        with fresh_database(name.lower().replace("-", "")) as url:
            methods[name] = function(url, first, reload)
        log(f"  first {methods[name]['first']['seconds']:.2f}s, reload {methods[name]['reload']['seconds']:.2f}s")
    same = methods["loader"]["checksums"] == methods["COPY"]["checksums"]
    with fresh_database("rtt", migrate_schema=False) as url:
        rtt = round_trip_seconds(url)
    result.data = {
        "invoices": len(first.records),
        "lines": len(first.line_rows),
        "rows": rows,
        "changed_fraction": changed,
        "reload_as_of": reload.as_of.isoformat(),
        "first_as_of": first.as_of.isoformat(),
        "methods": {k: {kk: vv for kk, vv in v.items() if kk != "checksums"} for k, v in methods.items()},
        "same_tables": same,
        "round_trip_seconds": rtt,
    }
    figures = result.figures
    for phase in ("first", "reload"):
        title = "first load" if phase == "first" else f"reload ({changed:.1%} changed)"
        rate = {name: rows / methods[name][phase]["seconds"] for name in methods}
        result.data.setdefault("rates", {})[phase] = rate
        for name in methods:
            figures.append(
                Figure(
                    "load",
                    f"{title}: {name}",
                    rate[name],
                    "rows/s",
                    note=f"{methods[name][phase]['seconds']:.2f} s",
                )
            )
        vs_copy = rate["loader"] / rate["COPY"]
        vs_rbr = rate["loader"] / rate["row-by-row"]
        figures.append(
            Figure("load", f"{title}: loader / COPY", vs_copy, "x", f">= {TARGET_VS_COPY}", vs_copy >= TARGET_VS_COPY)
        )
        figures.append(
            Figure(
                "load",
                f"{title}: loader / row-by-row",
                vs_rbr,
                "x",
                f">= {TARGET_VS_ROW_BY_ROW:g}",
                vs_rbr >= TARGET_VS_ROW_BY_ROW,
            )
        )
    loader_reload = methods["loader"]["reload"]
    figures.append(
        Figure(
            "load",
            "loader reload / first load time",
            loader_reload["seconds"] / methods["loader"]["first"]["seconds"],
            "x",
            note=f"{changed:.1%} of invoices changed; lower is better",
        )
    )
    figures.append(
        Figure(
            "load",
            "loader and COPY tables identical",
            "yes" if same else "NO",
            target="yes",
            passed=same,
            note="checksums of raw, work orders, lines (bookkeeping columns excluded)",
        )
    )
    observing, observing_all = observation_seconds(first.records), observation_seconds(first.records, False)
    result.data["schema_observation_seconds"] = {"sampled": observing, "every_invoice": observing_all}
    for label, seconds in (("as loaded (sampled)", observing), ("every invoice", observing_all)):
        figures.append(
            Figure(
                "load",
                f"schema observation, {label} / loader first load time",
                seconds / methods["loader"]["first"]["seconds"],
                "x",
                note=f"{seconds:.2f} s, part of the first load",
            )
        )
    statements = methods["row-by-row"]["first"]["statements"]
    for phase in ("first", "reload"):
        title = "first load" if phase == "first" else "reload"
        modelled = {
            name: methods[name][phase]["seconds"] + methods[name][phase]["statements"] * MODEL_RTT
            for name in ("loader", "row-by-row")
        }
        figures.append(
            Figure(
                "load",
                f"{title}: loader / row-by-row, modelled at {MODEL_RTT * 1000:g} ms round trip",
                modelled["row-by-row"] / modelled["loader"],
                "x",
                note=f"informational: measured time + round trips x {MODEL_RTT * 1000:g} ms "
                f"(loader {methods['loader'][phase]['statements']:,}, "
                f"row-by-row {methods['row-by-row'][phase]['statements']:,} round trips)",
            )
        )
    figures.append(
        Figure(
            "load",
            "PostgreSQL round trip (SELECT 1, median)",
            rtt * 1000,
            "ms",
            note=f"row-by-row: {statements:,} statements x round trip = {statements * rtt:.1f} s of pure latency",
        )
    )
    loader_first = methods["loader"]["first"]
    result.notes += [
        f"Day rows = {len(first.records):,} invoices + {len(first.line_rows):,} lines = {rows:,}; rows/s = day rows / "
        "seconds of the method's database work, for every method and for both the first load and the reload.",
        f"Reload: the simulated 'today' moved from {first.as_of} to {reload.as_of}, so balances were paid down: "
        f"{changed:.1%} of the invoices have a new content hash; the rest are byte-for-byte the same.",
        "loader: load_raw_day + build_work_orders_day on the API records; hashing, validation and normalisation "
        f"are its own work and are timed (first load: raw {loader_first['raw_seconds']:.2f} s, "
        f"work orders + lines {loader_first['build_seconds']:.2f} s).",
        "COPY: tables made with CREATE TABLE bench.x (LIKE public.x INCLUDING ALL) (primary keys and indexes, "
        "no foreign key); rows normalised, hashed and serialised to COPY text before the clock starts; timed: "
        "COPY of raw, work orders and lines plus the commit. Reload = TRUNCATE the three tables + COPY all rows.",
        "row-by-row: the project's real tables (with the lines' foreign key); parameters prepared before the clock "
        "starts; one cursor.execute INSERT per invoice and per line, one commit at the end; no raw table. Reload = "
        "one INSERT .. ON CONFLICT DO UPDATE per invoice and per line (every row rewritten: no change detection).",
        "Both comparators are flattered: their preparation (normalising, hashing, serialising) is not timed, the "
        "loader's is.",
        f"On this machine a round trip to PostgreSQL costs {rtt * 1000:.3f} ms (TCP over loopback), so row-by-row pays "
        "almost nothing for its one-statement-per-row design; across a network at 0.3-1 ms per round trip the same "
        f"{statements:,} statements would add {statements * 0.0003:.0f}-{statements * 0.001:.0f} s. The 'modelled' "
        "figures add round trips x 0.5 ms to each measured time (the loader's statements counted with a SQLAlchemy "
        "event); they are an estimate, not a measurement.",
    ]
    return result
