"""Assets of the date-windowed endpoints besides invoices, and the receivables.

For each endpoint chosen in ``FULLBAY_ENDPOINTS`` (see ``fullbay/endpoints.py``): a
raw asset that fetches the days and lands them in ``fullbay_raw_records``, and a
normalised asset that builds the endpoint's typed table (and line table). They
share the invoices' daily partitions, single-run backfills, the one Fullbay pool
and the daily job, and write the run log (``ingestion_metadata``, one row per run,
endpoint and day) as the invoice steps do: the raw step opens and counts the day,
the normalise step adds its counts and finishes it; a failure leaves the cause.
Their checks are ``<endpoint>_checks`` (defs/checks.py). A key Fullbay refuses on
one endpoint fails that endpoint's step with a message saying so; the other
endpoints' steps still run.
"""

import tempfile
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from fullbay_dagster.defs.assets import (
    FULLBAY_POOL,
    fullbay_invoices_api,
    ingestion_metadata,
    normalise_work_orders,
    open_run_log,
    raw_day_metadata,
    raw_work_orders,
    recorded_failure,
    retried_when_disconnected,
    retry_step,
)
from fullbay_dagster.defs.checks import endpoint_checks, fullbay_checks
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.defs.heap import step_heap
from fullbay_dagster.defs.partitions import daily_partitions, partition_days, single_run, span
from fullbay_dagster.defs.resources import AlertsResource, FullbayAPIResource, WarehouseResource
from fullbay_dagster.defs.runs import RunGuard, closes_run_log
from fullbay_dagster.defs.settings import ClientTuning
from fullbay_dagster.defs.tables import GROUP, OWNERS, TABLES, backend_kind
from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS, INVOICES, Endpoint
from fullbay_dagster.fullbay.errors import FullbayAuthError, FullbayError, FullbayPermanentError
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_windows
from fullbay_dagster.warehouse import receivables as aging
from fullbay_dagster.warehouse.endpoint_loader import build_endpoint_day, count_live_records, load_endpoint_raw_day
from fullbay_dagster.warehouse.figures import endpoint_day_rows
from fullbay_dagster.warehouse.runs import RunLog
from fullbay_dagster.warehouse.schema import endpoint_line_tables, endpoint_tables

CHOSEN: tuple[Endpoint, ...] = SETTINGS.endpoints
CHOSEN_NAMES = SETTINGS.endpoint_names
INVOICES_CHOSEN = INVOICES.name in CHOSEN_NAMES
# Invoices can be left out of FULLBAY_ENDPOINTS like any other endpoint: then their
# assets, their checks and the receivables (which age work orders) are not defined.
invoice_api: list[AssetSpec] = [fullbay_invoices_api] if INVOICES_CHOSEN else []
invoice_assets: list[AssetsDefinition] = (
    [raw_work_orders, normalise_work_orders, ingestion_metadata] if INVOICES_CHOSEN else []
)
invoice_checks = [fullbay_checks] if INVOICES_CHOSEN else []
_PARTITIONED: dict[str, Any] = {"partitions_def": daily_partitions, "backfill_policy": single_run}


def _tags(endpoint: Endpoint) -> dict[str, str]:
    return {"source": "fullbay", "domain": endpoint.name}


def _raw_asset(endpoint: Endpoint) -> AssetsDefinition:
    api = AssetSpec(
        key=AssetKey(["fullbay", endpoint.php.removesuffix(".php")]),
        description=f"Fullbay's `{endpoint.php}` endpoint ({endpoint.evidence}).",
        kinds={"api"},
        group_name=GROUP,
        owners=OWNERS,
    )

    windows = (
        f"7-day windows placed by {endpoint.date_field}"
        if endpoint.date_field
        else "one-day windows (date field unconfirmed)"
    )

    @asset(
        name=f"raw_{endpoint.name}",
        deps=[api],
        pool=FULLBAY_POOL,
        description=f"`fullbay_raw_records` rows of `{endpoint.php}`: the JSON as returned, content hash; {windows}.",
        kinds={backend_kind(), "table"},
        group_name=GROUP,
        owners=OWNERS,
        tags=_tags(endpoint),
        metadata={"dagster/table_name": "fullbay_raw_records", "endpoint": endpoint.php},
        **_PARTITIONED,
    )
    def raw(
        context: AssetExecutionContext,
        config: ClientTuning,
        fullbay: FullbayAPIResource,
        warehouse: WarehouseResource,
        alerts: AlertsResource,
    ) -> MaterializeResult:
        days = partition_days(context)
        engine = warehouse.get_engine()
        run_log = open_run_log(context, engine, days, endpoint.name, api_url(fullbay, endpoint))
        guard = RunGuard.for_context(context)
        with recorded_failure(context, run_log, days):
            client = fullbay.get_client(context.log, config)
            try:
                with (
                    retried_when_disconnected(context, config.resolved()),
                    step_heap(),
                    closing(client),
                    tempfile.TemporaryDirectory() as spool_dir,
                ):
                    spool = SpoolResult(Path(spool_dir))
                    for day in _fetched(context, config, client, endpoint, days, spool):
                        guard.check()
                        records = spool.checked(day)
                        counts = load_endpoint_raw_day(
                            engine,
                            endpoint,
                            day,
                            records,
                            run_id=context.run.run_id,
                            fetched_at=spool.fetched_at_of(day),
                        )
                        run_log.record_raw(day, counts)
                        rows = count_live_records(engine, endpoint, day, day)
                        context.add_asset_metadata(raw_day_metadata(rows, counts), partition_key=day.isoformat())
                        context.log.info(f"{endpoint.name} {day}: {counts.summary()}")
            finally:
                alerts.put_api_metrics(client.stats, endpoint.name, span(days))
        if closes_run_log(context, [endpoint.name]):
            run_log.finish(days)
            _publish_days(alerts, run_log, endpoint)
        return MaterializeResult(metadata={"run_span": span(days), "run_api_requests": client.stats.requests})

    return raw


def _publish_days(alerts: AlertsResource, run_log: RunLog, endpoint: Endpoint) -> None:
    """CloudWatch figures of the days this run finished, as invoices publish theirs."""
    for row in run_log.rows():
        alerts.put_day_metrics(row, endpoint.name)


def _fetched(
    context: AssetExecutionContext,
    config: ClientTuning,
    client: Any,
    endpoint: Endpoint,
    days: list[date],
    spool: SpoolResult,
) -> Iterator[date]:
    try:
        for window_days in fetch_windows(client, days[0], days[-1], spool, endpoint):
            yield from window_days
    except FullbayAuthError as exc:
        raise Failure(
            description=(
                f"{endpoint.php} was refused ({exc}). If the other endpoints load, this key is not allowed "
                f"on {endpoint.php}: ask Fullbay to enable it, or leave {endpoint.name} out of FULLBAY_ENDPOINTS."
            ),
            allow_retries=False,
        ) from None
    except FullbayPermanentError:
        raise
    except FullbayError as exc:
        retry_step(context, config.resolved(), f"Fetching {endpoint.php} failed ({exc})", exc)


def _table_spec(endpoint: Endpoint, key: str, table: Any, raw: AssetsDefinition) -> AssetSpec:
    return AssetSpec(
        key,
        deps=[raw],
        description=f"`{table.name}`: {table.comment}",
        kinds={backend_kind(), "table"},
        group_name=GROUP,
        owners=OWNERS,
        tags=_tags(endpoint),
        metadata={"dagster/table_name": table.name},
    )


def _normalised_asset(endpoint: Endpoint, raw: AssetsDefinition) -> AssetsDefinition:
    typed = endpoint_tables[endpoint.name]
    lines = endpoint_line_tables.get(endpoint.name)
    specs = [_table_spec(endpoint, endpoint.name, typed, raw)]
    if lines is not None:
        specs.append(_table_spec(endpoint, f"{endpoint.name}_lines", lines, raw))

    @multi_asset(name=f"normalise_{endpoint.name}", specs=specs, can_subset=False, **_PARTITIONED)
    def normalise(
        context: AssetExecutionContext, warehouse: WarehouseResource, alerts: AlertsResource
    ) -> Iterator[Any]:
        days = partition_days(context)
        engine = warehouse.get_engine()
        run_log = RunLog(engine, context.run.run_id, endpoint.name)
        guard = RunGuard.for_context(context)
        with (
            recorded_failure(context, run_log, days),
            retried_when_disconnected(context, ClientTuning().resolved()),
            step_heap(),
        ):
            for day in days:
                guard.check()
                counts = build_endpoint_day(engine, endpoint, day, run_id=context.run.run_id)
                run_log.record_build(day, counts)
                run_log.finish([day])  # the endpoint's last step: its day is done
                rows = endpoint_day_rows(engine, endpoint.name, day)
                context.add_asset_metadata(
                    {
                        "dagster/row_count": rows[typed.name],
                        "inserted": counts.inserted,
                        "updated": counts.updated,
                        "unchanged": counts.unchanged,
                        "deleted": counts.deleted,
                        "field_issues": counts.field_issues,
                    },
                    asset_key=AssetKey(endpoint.name),
                    partition_key=day.isoformat(),
                )
                if lines is not None:
                    context.add_asset_metadata(
                        {"dagster/row_count": rows[lines.name]},
                        asset_key=AssetKey(f"{endpoint.name}_lines"),
                        partition_key=day.isoformat(),
                    )
                context.log.info(f"{endpoint.name} {day}: {counts.summary()}")
        _publish_days(alerts, run_log, endpoint)
        for spec in specs:
            yield MaterializeResult(asset_key=spec.key, metadata={"run_span": span(days)})

    return normalise


def api_url(fullbay: FullbayAPIResource, endpoint: Endpoint) -> str:
    """What the run log's api_endpoint column holds: the URL the endpoint is called at."""
    return f"{fullbay.base_url.rstrip('/')}/{endpoint.php}"


def _build() -> tuple[list[AssetsDefinition], list[AssetChecksDefinition]]:
    assets: list[AssetsDefinition] = []
    checks: list[AssetChecksDefinition] = []
    for endpoint in GENERIC_ENDPOINTS:
        if endpoint.name not in CHOSEN_NAMES:
            continue
        chosen = SETTINGS.endpoint(endpoint.name)  # with its confirmed date field
        raw = _raw_asset(chosen)
        assets += [raw, _normalised_asset(chosen, raw)]
        checks.append(endpoint_checks(chosen))
    return assets, checks


endpoint_assets, endpoint_asset_checks = _build()

#: Asset name -> the endpoint whose run-log rows its step writes (the receivables write none).
ENDPOINT_OF_ASSET: dict[str, str] = {
    **{name: INVOICES.name for name in TABLES},
    **{
        key.to_user_string(): e.name
        for e in GENERIC_ENDPOINTS
        for key in (AssetKey(f"raw_{e.name}"), AssetKey(e.name), AssetKey(f"{e.name}_lines"))
    },
}


def endpoints_of_run(asset_keys: AbstractSet[AssetKey] | None) -> list[Endpoint]:
    """The chosen endpoints a run loads: those of its selected assets, or all when it selects no subset."""
    if not asset_keys:
        return list(CHOSEN)
    names = {ENDPOINT_OF_ASSET.get(key.to_user_string()) for key in asset_keys}
    return [e for e in CHOSEN if e.name in names]


@asset(
    deps=["work_orders", "customer_payments"],
    description=(
        "`fullbay_receivables`: open balance by customer aged current / 1-30 / 31-60 / 61-90 / 90+ days past due, "
        "as of the partition day; an invoice's open amount is its total less the payments loaded up to that day, "
        "or its balance where Fullbay gave it by then and it is lower."
    ),
    kinds={backend_kind(), "table"},
    group_name=GROUP,
    owners=OWNERS,
    tags={"source": "fullbay", "domain": "receivables"},
    metadata={"dagster/table_name": "fullbay_receivables"},
    **_PARTITIONED,
)
def receivables(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    days = partition_days(context)
    engine = warehouse.get_engine()
    linked = aging.payments_linked(engine)
    if not linked:
        context.log.warning(
            "No loaded customer payment names its invoice (invoice_fullbay_id is empty: Fullbay's field may not "
            "be invoicePrimaryKey). Each day is aged with the balances as fetched, which for a past day already "
            "count later payments."
        )
    for as_of in days:  # one aging per day of the run, each with its own figures
        rows = aging.compute(engine, as_of, ZoneInfo(SETTINGS.timezone), linked)
        aging.store(engine, as_of, rows)
        totals = aging.totals(rows)
        context.add_asset_metadata(
            {
                "dagster/row_count": len(rows),
                "open_balance": float(sum(totals.values())),
                "payments_linked": linked,
                **{f"bucket_{name}": float(value) for name, value in totals.items()},
                "aging": MetadataValue.md(aging.aging_markdown(rows)),
            },
            partition_key=as_of.isoformat(),
        )
    # As the UI shows them: a day aged with no open balance has no row to tell by.
    span_end = days[-1].isoformat()
    later = sorted(key for key in context.instance.get_materialized_partitions(context.asset_key) if key > span_end)
    if later:
        # A day's aging counts every earlier day's invoices: those aged before this load lack it.
        context.log.warning(
            f"{len(later)} later day(s) of fullbay_receivables ({later[0]}..{later[-1]}) were aged before this "
            f"load: materialize receivables for {days[0]}..{later[-1]} to include it."
        )
    return MaterializeResult(metadata={"run_span": span(days), "run_later_days_to_refresh": len(later)})


# Defined with both sides of the join: an invoices-only location keeps its graph as it
# was, and a location without invoices has no work orders to age.
receivables_assets: list[AssetsDefinition] = (
    [receivables] if {INVOICES.name, "customer_payments"} <= CHOSEN_NAMES else []
)
