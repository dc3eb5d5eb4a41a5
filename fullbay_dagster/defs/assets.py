"""The three assets: raw work orders -> normalised work orders -> ingestion metadata.

They share one daily partitioning keyed on Fullbay's invoice date. A run may hold a
range of days (backfills run as a single run): the raw step then fetches 7-day
windows, and every step loads each day in its own transaction.
"""

import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    TimeWindowPartitionsDefinition,
    asset,
)

from fullbay_dagster.defs.checks import CHECK_SPECS, evaluate_checks
from fullbay_dagster.defs.preview import preview_table
from fullbay_dagster.defs.quality_checks import QUALITY_CHECK_SPECS, evaluate_quality
from fullbay_dagster.defs.resources import AlertsResource, FullbayAPIResource, WarehouseResource
from fullbay_dagster.fullbay.client import INVOICES_ENDPOINT, FullbayClient
from fullbay_dagster.fullbay.errors import FullbayError, FullbayPermanentError
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_windows
from fullbay_dagster.fullbay.windows import days_in
from fullbay_dagster.warehouse import loader, runs
from fullbay_dagster.warehouse.schema import ingestion_metadata as ingestion_metadata_table
from fullbay_dagster.warehouse.schema import raw_work_orders as raw_table
from fullbay_dagster.warehouse.schema import work_orders as work_orders_table

GROUP = "fullbay"
OWNERS = ["team:data-engineering"]
# Runs carrying this tag call Fullbay; deploy/ limits how many run at once.
API_TAG = {"fullbay/api": "invoices"}


def partition_days(context: AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    return days_in(window.start.date(), window.end.date())[:-1]


@contextmanager
def recorded_failure(context: AssetExecutionContext, warehouse: WarehouseResource, days: list[date]) -> Iterator[None]:
    """Leave a 'failed' row with the (already redacted) error in ingestion_metadata."""
    try:
        yield
    except Exception as exc:
        try:
            runs.fail(warehouse.get_engine(), context.run.run_id, days, f"{type(exc).__name__}: {exc}")
        except Exception as bookkeeping:  # the database itself may be what failed; keep the original error
            context.log.warning(f"Could not record the failure in ingestion_metadata: {type(bookkeeping).__name__}")
        raise


def build_assets(partitions_def: TimeWindowPartitionsDefinition, timezone: str) -> list[AssetsDefinition]:
    zone = ZoneInfo(timezone)
    common: dict[str, Any] = {
        "partitions_def": partitions_def,
        "backfill_policy": BackfillPolicy.single_run(),
        "group_name": GROUP,
        "owners": OWNERS,
    }

    @asset(
        description=(
            "Every Fullbay invoice of the day, untouched JSON plus a content hash, in "
            "`fullbay_raw_work_orders`. Invoices that vanish from a day's answer are marked deleted."
        ),
        kinds={"python", "postgres"},
        op_tags=API_TAG,
        **common,
    )
    def raw_work_orders(
        context: AssetExecutionContext,
        fullbay: FullbayAPIResource,
        warehouse: WarehouseResource,
        alerts: AlertsResource,
    ) -> MaterializeResult:
        days = partition_days(context)
        started = time.monotonic()
        engine = warehouse.get_engine()
        runs.start(engine, context.run.run_id, days, f"{fullbay.base_url.rstrip('/')}/{INVOICES_ENDPOINT}")
        context.log.info(f"Fetching {len(days)} day(s) {days[0]}..{days[-1]} into {warehouse.describe()}")
        total = loader.LoadCounts()
        with recorded_failure(context, warehouse, days):
            client = fullbay.get_client(context.log)
            try:
                with closing(client), tempfile.TemporaryDirectory() as spool_dir:
                    spool = SpoolResult(Path(spool_dir))
                    # Each window's days load while later windows are still being fetched.
                    for day in _fetched_days(context, fullbay, client, days, spool):
                        counts = loader.load_raw_day(
                            engine,
                            day,
                            spool.records(day),
                            run_id=context.run.run_id,
                            fetched_at=spool.fetched_at,
                        )
                        runs.record(
                            engine,
                            context.run.run_id,
                            day,
                            records_processed=counts.processed,
                            api_record_count=counts.processed,
                            records_quarantined=counts.quarantined,
                        )
                        context.log.info(f"{day}: {counts.summary()}")
                        _accumulate(total, counts)
                    context.log.info(f"Fetched {sum(spool.counts.values())} invoices: {client.stats.as_dict()}")
            finally:
                alerts.put_metrics(
                    {"ApiRequests": client.stats.requests, "FailedRequests": client.stats.retries},
                    Partition=_span(days),
                )
        return MaterializeResult(
            metadata={
                **_count_metadata(total, days, started),
                "dagster/row_count": loader.count_live_rows(engine, raw_table, days[0], days[-1]),
                "api_requests": client.stats.requests,
                "api_pages": client.stats.pages,
                "api_retries": client.stats.retries,
                "api_records": client.stats.records,
                "api_page_repeats": client.stats.repeats,
                "duplicates_dropped": total.duplicates,
                "quarantined": total.quarantined,
                "stale_skipped": total.stale,
            },
        )

    @asset(
        deps=[raw_work_orders],
        description=(
            "Normalised work orders (`fullbay_work_orders`, one row per invoice, exact decimals, "
            "timestamps in FULLBAY_TIMEZONE) with part, labor and misc lines in `fullbay_work_order_lines`."
        ),
        kinds={"python", "postgres"},
        check_specs=CHECK_SPECS + QUALITY_CHECK_SPECS,
        **common,
    )
    def work_orders(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        days = partition_days(context)
        started = time.monotonic()
        engine = warehouse.get_engine()
        source = f"fullbay:{INVOICES_ENDPOINT}:run:{context.run.run_id}"
        total = loader.LoadCounts()
        with recorded_failure(context, warehouse, days):
            for day in days:
                counts = loader.build_work_orders_day(engine, day, zone=zone, source=source, run_id=context.run.run_id)
                runs.record(
                    engine,
                    context.run.run_id,
                    day,
                    records_inserted=counts.inserted,
                    records_updated=counts.updated,
                    records_unchanged=counts.unchanged,
                    records_deleted=counts.deleted,
                    field_issues=counts.field_issues,
                    # the raw step counted what it could not store; add what did not normalise
                    records_quarantined=ingestion_metadata_table.c.records_quarantined + counts.quarantined,
                )
                context.log.info(f"{day}: {counts.summary()}")
                _accumulate(total, counts)
        return MaterializeResult(
            metadata={
                **_count_metadata(total, days, started),
                "dagster/row_count": loader.count_live_rows(engine, work_orders_table, days[0], days[-1]),
                "lines_written": total.lines,
                "quarantined": total.quarantined,
                "field_issues": total.field_issues,
                "preview": preview_table(engine, days),
            },
            check_results=evaluate_checks(engine, context.run.run_id, days)
            + evaluate_quality(engine, context.run.run_id, days),
        )

    @asset(
        deps=[work_orders],
        description="One row per (run, day) in `ingestion_metadata`: counts, timings, status; failures too.",
        kinds={"python", "postgres"},
        **common,
    )
    def ingestion_metadata(
        context: AssetExecutionContext, warehouse: WarehouseResource, alerts: AlertsResource
    ) -> MaterializeResult:
        days = partition_days(context)
        engine = warehouse.get_engine()
        for day in days:
            runs.finish(engine, context.run.run_id, day)
        rows = runs.rows_for_run(engine, context.run.run_id)
        for row in rows:
            alerts.put_metrics(
                {
                    "RecordsProcessed": row["records_processed"],
                    "RecordsInserted": row["records_inserted"],
                    "RecordsUpdated": row["records_updated"],
                    "RecordsDeleted": row["records_deleted"],
                    "DurationSeconds": (row["end_time"] - row["start_time"]).total_seconds(),
                },
                Partition=row["partition_key"],
            )
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "days": len(days),
                "records_processed": sum(r["records_processed"] for r in rows),
                "field_issues": sum(r["field_issues"] for r in rows),
                "runs": MetadataValue.md(_markdown(rows)),
            }
        )

    return [raw_work_orders, work_orders, ingestion_metadata]


def _fetched_days(
    context: AssetExecutionContext,
    fullbay: FullbayAPIResource,
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
        context.log.warning(f"Fetching failed ({exc}); asking Dagster to retry the step.")
        raise RetryRequested(max_retries=fullbay.step_retries, seconds_to_wait=fullbay.step_retry_wait) from exc


def _accumulate(total: loader.LoadCounts, counts: loader.LoadCounts) -> None:
    for name, value in counts.as_dict().items():
        setattr(total, name, getattr(total, name) + value)


def _count_metadata(total: loader.LoadCounts, days: list[date], started: float) -> dict[str, Any]:
    return {
        "days": len(days),
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "records_processed": total.processed,
        "inserted": total.inserted,
        "updated": total.updated,
        "unchanged": total.unchanged,
        "deleted": total.deleted,
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def _span(days: list[date]) -> str:
    return days[0].isoformat() if len(days) == 1 else f"{days[0]}...{days[-1]}"


def _markdown(rows: list[dict[str, Any]]) -> str:
    columns = [
        "partition_key",
        "status",
        "records_processed",
        "records_inserted",
        "records_updated",
        "records_deleted",
        "records_quarantined",
        "field_issues",
    ]
    return str(pd.DataFrame(rows, columns=columns).head(60).to_markdown(index=False))
