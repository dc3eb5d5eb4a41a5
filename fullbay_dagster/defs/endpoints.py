"""Assets of the date-windowed endpoints besides invoices, and the receivables.

For each endpoint chosen in ``FULLBAY_ENDPOINTS`` (see ``fullbay/endpoints.py``): a
raw asset that fetches the days and lands them in ``fullbay_raw_records``, and a
normalised asset that builds the endpoint's typed table (and line table). They
share the invoices' daily partitions, single-run backfills, the one Fullbay pool
and the daily job. A key Fullbay refuses on one endpoint fails that endpoint's
step with a message saying so; the other endpoints' steps still run.
"""

import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    asset,
    multi_asset,
)
from sqlalchemy import func, select

from fullbay_dagster.defs.assets import DEFAULT_STEP_RETRIES, DEFAULT_STEP_RETRY_WAIT, FULLBAY_POOL
from fullbay_dagster.defs.partitions import daily_partitions, partition_days, single_run, span
from fullbay_dagster.defs.resources import FullbayAPIResource, WarehouseResource
from fullbay_dagster.defs.settings import ClientTuning, SettingsError
from fullbay_dagster.defs.tables import GROUP, OWNERS, backend_kind
from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS, Endpoint, selected_endpoints
from fullbay_dagster.fullbay.errors import FullbayAuthError, FullbayError, FullbayPermanentError
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_windows
from fullbay_dagster.warehouse import receivables as aging
from fullbay_dagster.warehouse.endpoint_loader import build_endpoint_day, count_live_records, load_endpoint_raw_day
from fullbay_dagster.warehouse.schema import endpoint_line_tables, endpoint_tables, quarantine

try:
    CHOSEN: list[Endpoint] = selected_endpoints()
except ValueError as exc:
    raise SettingsError(str(exc)) from None
CHOSEN_NAMES = {e.name for e in CHOSEN}
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
        context: AssetExecutionContext, config: ClientTuning, fullbay: FullbayAPIResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        days = partition_days(context)
        engine = warehouse.get_engine()
        client = fullbay.get_client(context.log, config)
        with closing(client), tempfile.TemporaryDirectory() as spool_dir:
            spool = SpoolResult(Path(spool_dir))
            for day in _fetched(context, config, client, endpoint, days, spool):
                counts = load_endpoint_raw_day(
                    engine, endpoint, day, spool.records(day), run_id=context.run.run_id, fetched_at=spool.fetched_at
                )
                context.add_asset_metadata(
                    {
                        "dagster/row_count": count_live_records(engine, endpoint, day, day),
                        "api_records": spool.counts.get(day, 0),
                        "quarantined": counts.quarantined,
                        "deleted": counts.deleted,
                    },
                    partition_key=day.isoformat(),
                )
                context.log.info(f"{endpoint.name} {day}: {counts.summary()}")
        return MaterializeResult(metadata={"run_span": span(days), "run_api_requests": client.stats.requests})

    return raw


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
        tuning = config.resolved()
        context.log.warning(f"Fetching {endpoint.php} failed ({exc}); asking Dagster to retry the step.")
        raise RetryRequested(
            max_retries=tuning.get("step_retries", DEFAULT_STEP_RETRIES),
            seconds_to_wait=tuning.get("step_retry_wait", DEFAULT_STEP_RETRY_WAIT),
        ) from exc


def _normalised_asset(endpoint: Endpoint, raw: AssetsDefinition) -> AssetsDefinition:
    typed = endpoint_tables[endpoint.name]
    lines = endpoint_line_tables.get(endpoint.name)
    specs = [
        AssetSpec(
            endpoint.name,
            deps=[raw],
            description=f"`{typed.name}`: {typed.comment}",
            kinds={backend_kind(), "table"},
            group_name=GROUP,
            owners=OWNERS,
            tags=_tags(endpoint),
            metadata={"dagster/table_name": typed.name},
        )
    ]
    if lines is not None:
        specs.append(
            AssetSpec(
                f"{endpoint.name}_lines",
                deps=[raw],
                description=f"`{lines.name}`: {lines.comment}",
                kinds={backend_kind(), "table"},
                group_name=GROUP,
                owners=OWNERS,
                tags=_tags(endpoint),
                metadata={"dagster/table_name": lines.name},
            )
        )
    check_specs = [
        AssetCheckSpec(
            "rows_match_api_count",
            asset=endpoint.name,
            description="Live typed rows of each day equal the records the API returned for it, less quarantined.",
        ),
        AssetCheckSpec(
            "no_quarantined_records",
            asset=endpoint.name,
            description="Every record the API returned could be placed.",
        ),
    ]

    @multi_asset(
        name=f"normalise_{endpoint.name}", specs=specs, check_specs=check_specs, can_subset=False, **_PARTITIONED
    )
    def normalise(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
        days = partition_days(context)
        engine = warehouse.get_engine()
        mismatched: dict[str, tuple[int, int]] = {}
        quarantined = 0
        for day in days:
            counts = build_endpoint_day(engine, endpoint, day, run_id=context.run.run_id)
            context.add_asset_metadata(
                {
                    "dagster/row_count": counts.processed,
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "deleted": counts.deleted,
                    "field_issues": counts.field_issues,
                },
                asset_key=AssetKey(endpoint.name),
                partition_key=day.isoformat(),
            )
            raw_live = count_live_records(engine, endpoint, day, day)
            with engine.connect() as connection:
                typed_live = connection.execute(
                    select(func.count()).where(typed.c.record_date == day, typed.c.deleted_at.is_(None))
                ).scalar_one()
                quarantined += connection.execute(
                    select(func.count()).where(
                        quarantine.c.endpoint == endpoint.name, quarantine.c.partition_key == day.isoformat()
                    )
                ).scalar_one()
            if typed_live != raw_live:
                mismatched[day.isoformat()] = (typed_live, raw_live)
            context.log.info(f"{endpoint.name} {day}: {counts.summary()}")
        for spec in specs:
            yield MaterializeResult(asset_key=spec.key, metadata={"run_span": span(days)})
        yield AssetCheckResult(
            asset_key=endpoint.name,
            check_name="rows_match_api_count",
            passed=not mismatched,
            severity=AssetCheckSeverity.ERROR,
            metadata={"days": len(days), "mismatched (typed, raw)": MetadataValue.json(mismatched)},
        )
        yield AssetCheckResult(
            asset_key=endpoint.name,
            check_name="no_quarantined_records",
            passed=quarantined == 0,
            severity=AssetCheckSeverity.WARN,
            metadata={"quarantined": quarantined},
        )

    return normalise


def _build() -> list[AssetsDefinition]:
    out: list[AssetsDefinition] = []
    for endpoint in GENERIC_ENDPOINTS:
        if endpoint.name not in CHOSEN_NAMES:
            continue
        chosen = next(e for e in CHOSEN if e.name == endpoint.name)  # with its confirmed date field
        raw = _raw_asset(chosen)
        out += [raw, _normalised_asset(chosen, raw)]
    return out


endpoint_assets = _build()


@asset(
    deps=["work_orders", "customer_payments"],
    description=(
        "`fullbay_receivables`: open balance by customer aged current / 1-30 / 31-60 / 61-90 / 90+ days past due, "
        "as of the partition day; an invoice's open amount is its balance or its total less the payments "
        "loaded since, whichever is lower."
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
    for as_of in days:  # one aging per day of the run, each with its own figures
        rows = aging.compute(engine, as_of)
        aging.store(engine, as_of, rows)
        totals = aging.totals(rows)
        context.add_asset_metadata(
            {
                "dagster/row_count": len(rows),
                "open_balance": float(sum(totals.values())),
                **{f"bucket_{name}": float(value) for name, value in totals.items()},
                "aging": MetadataValue.md(aging.aging_markdown(rows)),
            },
            partition_key=as_of.isoformat(),
        )
    return MaterializeResult(metadata={"run_span": span(days)})


# Defined with the payments it joins: an invoices-only location keeps its graph as it was.
receivables_assets: list[AssetsDefinition] = [receivables] if "customer_payments" in CHOSEN_NAMES else []
