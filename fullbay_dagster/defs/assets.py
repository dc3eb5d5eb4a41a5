"""The assets: Fullbay's invoice endpoint -> raw invoices -> work orders, lines and
quarantine -> the run log.

All share the daily partitions. A run may hold a range of days (backfills run as
one run): the raw step then fetches 7-day windows and every step loads each day
in its own transaction. Dagster gives every partition of a range the same
``MaterializeResult`` metadata, so a day's own figures are attached to that day
with ``add_asset_metadata(partition_key=...)`` and what covers the whole run is
named ``run_*``.
"""

import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import psycopg2
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DagsterExecutionInterruptedError,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    TableColumn,
    TableMetadataValue,
    TableRecord,
    TableSchema,
    asset,
    multi_asset,
)
from sqlalchemy.exc import DBAPIError

from fullbay_dagster.defs.heap import step_heap
from fullbay_dagster.defs.partitions import daily_partitions, partition_days, single_run, span
from fullbay_dagster.defs.resources import FULLBAY_POOL, AlertsResource, FullbayAPIResource, WarehouseResource
from fullbay_dagster.defs.runs import RunGuard, closes_run_log, run_is_alive
from fullbay_dagster.defs.settings import ClientTuning
from fullbay_dagster.defs.tables import GROUP, OWNERS, TABLES, TAGS, table_spec_kwargs
from fullbay_dagster.fullbay.client import INVOICES_ENDPOINT, FullbayClient
from fullbay_dagster.fullbay.errors import FullbayError, FullbayPermanentError
from fullbay_dagster.fullbay.redaction import redact
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_windows
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.figures import PREVIEW_COLUMNS, day_row_counts, preview_rows
from fullbay_dagster.warehouse.runs import RunLog

DEFAULT_STEP_RETRIES = 3
DEFAULT_STEP_RETRY_WAIT = 60.0

fullbay_invoices_api = AssetSpec(
    key=AssetKey(["fullbay", "getInvoices"]),
    description="Fullbay's `getInvoices.php` endpoint (FULLBAY_API_BASE_URL): invoices by invoice date.",
    kinds={"api"},
    group_name=GROUP,
    owners=OWNERS,
    tags=TAGS,
    metadata={"endpoint": INVOICES_ENDPOINT},
)

_PARTITIONED: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "backfill_policy": single_run,
}


def _table_name(name: str) -> str:
    return TABLES[name].table.name


# What each step counts for its days' pages: its own tables only (a query per table and day).
RAW_TABLE = _table_name("raw_work_orders")
NORMALISED_TABLES = [
    _table_name(name) for name in ("work_orders", "work_order_lines", "quarantine", "field_issues", "schema_fields")
]
RUN_LOG_TABLE = _table_name("ingestion_metadata")


@asset(
    deps=[fullbay_invoices_api],
    pool=FULLBAY_POOL,
    **_PARTITIONED,
    **table_spec_kwargs("raw_work_orders"),
)
def raw_work_orders(
    context: AssetExecutionContext,
    config: ClientTuning,
    fullbay: FullbayAPIResource,
    warehouse: WarehouseResource,
    alerts: AlertsResource,
) -> MaterializeResult:
    days = partition_days(context)
    started = time.monotonic()
    engine = warehouse.get_engine()
    run_log = open_run_log(context, engine, days, "invoices", f"{fullbay.base_url.rstrip('/')}/{INVOICES_ENDPOINT}")
    guard = RunGuard.for_context(context)
    context.log.info(f"Fetching {len(days)} day(s) {span(days)} into {warehouse.describe()}")
    with recorded_failure(context, run_log, days):
        tuning = config.resolved()  # a bad FULLBAY_* value fails the run-log rows with its message
        client = fullbay.get_client(context.log, config)
        try:
            with (
                retried_when_disconnected(context, tuning),
                step_heap(),
                closing(client),
                tempfile.TemporaryDirectory() as spool_dir,
            ):
                spool = SpoolResult(Path(spool_dir))
                # Each window's days load while later windows are still being fetched.
                for day in _fetched_days(context, tuning, client, days, spool):
                    guard.check()
                    counts = loader.load_raw_day(
                        engine, day, spool.checked(day), run_id=context.run.run_id, fetched_at=spool.fetched_at_of(day)
                    )
                    run_log.record_raw(day, counts)
                    rows = day_row_counts(engine, day, [RAW_TABLE])[RAW_TABLE]
                    context.add_asset_metadata(raw_day_metadata(rows, counts), partition_key=day.isoformat())
                    context.log.info(f"{day}: {counts.summary()}")
        finally:
            alerts.put_api_metrics(client.stats, "invoices", span(days))
    if closes_run_log(context, ["work_orders", "ingestion_metadata"]):
        run_log.finish(days)
    stats = client.stats
    context.log.info(
        f"raw_work_orders {span(days)}: {stats.records} invoices in {stats.pages} pages, "
        f"{stats.requests} requests, {stats.retries} retries"
    )
    return MaterializeResult(
        metadata={
            "run_span": span(days),
            "run_api_requests": stats.requests,
            "run_api_pages": stats.pages,
            "run_api_retries": stats.retries,
            # an invoice the API repeated on two pages, identically on a refetch (nothing missing)
            "run_api_page_repeats": stats.repeats,
            "run_duration_seconds": round(time.monotonic() - started, 3),
        }
    )


@multi_asset(
    name="normalise_work_orders",
    specs=[
        AssetSpec("work_orders", deps=[raw_work_orders], **table_spec_kwargs("work_orders")),
        AssetSpec("work_order_lines", deps=[raw_work_orders], **table_spec_kwargs("work_order_lines")),
        AssetSpec("quarantine", deps=[raw_work_orders], **table_spec_kwargs("quarantine")),
        AssetSpec("field_issues", deps=[raw_work_orders], **table_spec_kwargs("field_issues")),
        AssetSpec("schema_fields", deps=[raw_work_orders], **table_spec_kwargs("schema_fields")),
    ],
    description="Normalises the day's raw invoices into work orders and lines; what does not normalise is quarantined.",
    **_PARTITIONED,
)
def normalise_work_orders(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[MaterializeResult]:
    days = partition_days(context)
    started = time.monotonic()
    engine = warehouse.get_engine()
    run_log = RunLog(engine, context.run.run_id)
    guard = RunGuard.for_context(context)
    zone = ZoneInfo(daily_partitions.timezone)
    source = f"fullbay:{INVOICES_ENDPOINT}:run:{context.run.run_id}"
    with (
        recorded_failure(context, run_log, days),
        retried_when_disconnected(context, ClientTuning().resolved()),
        step_heap(),
    ):
        for day in days:
            guard.check()
            counts = loader.build_work_orders_day(engine, day, zone=zone, source=source, run_id=context.run.run_id)
            run_log.record_build(day, counts)
            _attach_day_figures(context, engine, day, counts)
            context.log.info(f"{day}: {counts.summary()}")
    if closes_run_log(context, ["ingestion_metadata"]):
        run_log.finish(days)
    run_metadata: dict[str, Any] = {
        "run_span": span(days),
        "run_duration_seconds": round(time.monotonic() - started, 3),
    }
    for key in sorted(context.selected_asset_keys):
        yield MaterializeResult(asset_key=key, metadata=run_metadata)


def _attach_day_figures(context: AssetExecutionContext, engine: Any, day: date, counts: loader.LoadCounts) -> None:
    rows = day_row_counts(engine, day, NORMALISED_TABLES)
    partition = day.isoformat()
    context.add_asset_metadata(
        {
            "dagster/row_count": rows[_table_name("work_orders")],
            "inserted": counts.inserted,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "deleted": counts.deleted,
            "field_issues": counts.field_issues,
            "preview": preview_table(engine, day),
        },
        asset_key="work_orders",
        partition_key=partition,
    )
    context.add_asset_metadata(
        {"dagster/row_count": rows[_table_name("work_order_lines")], "lines_written": counts.lines},
        asset_key="work_order_lines",
        partition_key=partition,
    )
    context.add_asset_metadata(
        {"dagster/row_count": rows[_table_name("quarantine")], "quarantined": counts.quarantined},
        asset_key="quarantine",
        partition_key=partition,
    )
    context.add_asset_metadata(
        {"dagster/row_count": rows[_table_name("field_issues")]},
        asset_key="field_issues",
        partition_key=partition,
    )
    # One row per field path across all days: no per-day row count to show here.
    context.add_asset_metadata(
        {"paths_observed_in_table": rows[_table_name("schema_fields")]},
        asset_key="schema_fields",
        partition_key=partition,
    )


def preview_table(engine: Any, day: date) -> TableMetadataValue:
    """The first work orders of the day (named in each row), typed: money as numbers."""
    types = {"total_amount": "float", "invoice_date": "date"}
    return MetadataValue.table(
        records=[TableRecord(row) for row in preview_rows(engine, day)],
        schema=TableSchema(columns=[TableColumn(name, types.get(name, "string")) for name in PREVIEW_COLUMNS]),
    )


RUN_LOG_COLUMNS = {
    "partition_key": "date",
    "status": "string",
    "records_processed": "int",
    "records_inserted": "int",
    "records_updated": "int",
    "records_unchanged": "int",
    "records_deleted": "int",
    "records_quarantined": "int",
    "field_issues": "int",
    "duration_seconds": "float",
}


@asset(
    deps=["work_orders", "work_order_lines", "quarantine", "field_issues", "schema_fields"],
    **_PARTITIONED,
    **table_spec_kwargs("ingestion_metadata"),
)
def ingestion_metadata(
    context: AssetExecutionContext, warehouse: WarehouseResource, alerts: AlertsResource
) -> MaterializeResult:
    days = partition_days(context)
    engine = warehouse.get_engine()
    run_log = RunLog(engine, context.run.run_id)
    run_log.finish(days)
    rows = run_log.rows()
    records = []
    for row in rows:
        duration = (row["end_time"] - row["start_time"]).total_seconds() if row["end_time"] else None
        alerts.put_day_metrics(row, "invoices")
        record = {name: row.get(name) for name in RUN_LOG_COLUMNS if name != "duration_seconds"}
        records.append({**record, "duration_seconds": round(duration, 3) if duration is not None else None})
        day = date.fromisoformat(row["partition_key"])
        context.add_asset_metadata(
            {
                "dagster/row_count": day_row_counts(engine, day, [RUN_LOG_TABLE])[RUN_LOG_TABLE],
                "status": row["status"],
                "records_processed": row["records_processed"],
                "records_inserted": row["records_inserted"],
                "records_updated": row["records_updated"],
                "records_quarantined": row["records_quarantined"],
                "field_issues": row["field_issues"],
            },
            partition_key=row["partition_key"],
        )
    for line in _summary_lines(engine, days, rows):
        context.log.info(line)
    return MaterializeResult(
        metadata={
            "run_span": span(days),
            "run_days": MetadataValue.table(
                records=[TableRecord(r) for r in records],
                schema=TableSchema(columns=[TableColumn(name, kind) for name, kind in RUN_LOG_COLUMNS.items()]),
            ),
        }
    )


def _summary_lines(engine: Any, days: list[date], rows: list[dict[str, Any]]) -> list[str]:
    """One line per table asset: what the run did to it and what its days now hold."""
    held = {name: 0 for name in TABLES}
    for day in days:
        counts = day_row_counts(engine, day)
        for name in TABLES:
            held[name] += counts[_table_name(name)]
    held["schema_fields"] = counts[_table_name("schema_fields")]  # one row per path, not per day

    def total(column: str) -> int:
        return sum(int(r[column] or 0) for r in rows)

    did = {
        "raw_work_orders": f"{total('records_processed')} invoices fetched",
        "work_orders": (
            f"{total('records_inserted')} inserted, {total('records_updated')} updated, "
            f"{total('records_unchanged')} unchanged, {total('records_deleted')} deleted"
        ),
        "work_order_lines": "rebuilt with their work orders",
        "quarantine": f"{total('records_quarantined')} records quarantined",
        "field_issues": f"{total('field_issues')} fields did not parse",
        "schema_fields": "field paths observed",
        "ingestion_metadata": ", ".join(f"{r['partition_key']} {r['status']}" for r in rows),
    }
    return [f"{name} {span(days)}: {did.get(name, 'written')}; {held[name]} rows" for name in TABLES]


def raw_day_metadata(rows: int, counts: loader.LoadCounts) -> dict[str, int]:
    """A raw step's figures for one day's partition page, the same for every endpoint."""
    return {
        "dagster/row_count": rows,
        "api_records": counts.processed,
        "duplicates_dropped": counts.duplicates,
        "quarantined": counts.quarantined,
        "deleted": counts.deleted,
        "stale_skipped": counts.stale,
    }


def open_run_log(context: AssetExecutionContext, engine: Any, days: list[date], endpoint: str, url: str) -> RunLog:
    """The raw step's first write: close what dead runs left for these days, then
    open this run's ``running`` rows."""
    run_log = RunLog(engine, context.run.run_id, endpoint)
    closed = run_log.close_abandoned(days, run_is_alive(context.instance))
    if closed:
        context.log.warning(f"Closed the running rows of runs that ended without finishing: {', '.join(closed)}")
    run_log.start(days, url)
    return run_log


@contextmanager
def recorded_failure(context: AssetExecutionContext, run_log: RunLog, days: list[date]) -> Iterator[None]:
    """Leave the real cause of a failure in ``ingestion_metadata``: while Dagster will
    retry the step the rows stay ``running`` with the cause noted; after the last
    attempt they are ``failed`` with it."""
    try:
        yield
    except RetryRequested as retry:
        cause = _describe(retry.__cause__ or retry)
        try:
            if context.retry_number < retry.max_retries:
                run_log.note(days, f"attempt {context.retry_number + 1} failed, retrying: {cause}")
            else:
                run_log.fail(days, cause)
        except Exception as bookkeeping:  # the database itself may be what failed; keep the original error
            context.log.warning(f"Could not record the failure in ingestion_metadata: {type(bookkeeping).__name__}")
        raise
    except (Exception, DagsterExecutionInterruptedError) as exc:
        # Interrupted (the run terminated, its backfill canceled) is a BaseException:
        # without this its rows would stay `running` until a rerun of the same days.
        cause = TERMINATED if isinstance(exc, DagsterExecutionInterruptedError) else _describe(exc)
        try:
            run_log.fail(days, cause)
        except Exception as bookkeeping:
            context.log.warning(f"Could not record the failure in ingestion_metadata: {type(bookkeeping).__name__}")
        raise


TERMINATED = "the run was terminated (or its backfill canceled) before this day finished"


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def _fetched_days(
    context: AssetExecutionContext,
    tuning: dict[str, Any],
    client: FullbayClient,
    days: list[date],
    spool: SpoolResult,
) -> Iterator[date]:
    """Days as their windows finish fetching. Transient trouble that outlasted the
    client's own retries gets the step retried by Dagster after a pause (days already
    loaded reload as unchanged); permanent errors (bad key, IP) fail at once."""
    try:
        for window_days in fetch_windows(client, days[0], days[-1], spool):
            yield from window_days
    except FullbayPermanentError:
        raise
    except FullbayError as exc:
        retry_step(context, tuning, f"Fetching failed ({exc})", exc)


@contextmanager
def retried_when_disconnected(context: AssetExecutionContext, tuning: dict[str, Any]) -> Iterator[None]:
    """A dropped database connection (a failover, a restart, a killed backend) rolls back
    only the day in progress: Dagster retries the step, and the days already loaded
    reload as unchanged. Other database errors fail the step as they are."""
    try:
        yield
    except (DBAPIError, psycopg2.OperationalError) as exc:
        if not dropped_connection(exc):
            raise
        retry_step(context, tuning, f"The database connection dropped ({_describe(exc)})", exc)


# SQLSTATE classes of a lost connection: 08 (connection exception), 57P01-57P03
# (admin or crash shutdown, cannot connect now); a lost socket has no SQLSTATE.
_DISCONNECT_STATES = ("08", "57P01", "57P02", "57P03")


def dropped_connection(exc: Exception) -> bool:
    """Whether the error is a lost connection, not what the database refused (a full
    disk, a statement timeout), which a retry would only repeat."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    # A background COPY raises psycopg2's own error, which SQLAlchemy has not wrapped.
    code = getattr(exc, "pgcode", None)
    return code is None or code.startswith(_DISCONNECT_STATES)


def retry_step(context: AssetExecutionContext, tuning: dict[str, Any], what: str, exc: BaseException) -> NoReturn:
    """Ask Dagster to retry the step after a pause (``step_retries``, ``step_retry_wait``);
    with retries off (0) the step fails with ``exc`` itself."""
    retries = tuning.get("step_retries", DEFAULT_STEP_RETRIES)
    if not retries:
        raise exc
    context.log.warning(f"{what}; asking Dagster to retry the step.")
    raise RetryRequested(
        max_retries=retries, seconds_to_wait=tuning.get("step_retry_wait", DEFAULT_STEP_RETRY_WAIT)
    ) from exc
