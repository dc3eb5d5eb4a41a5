"""Asset checks, one result per partition day: invoices' ``fullbay_checks`` and each
other endpoint's ``<endpoint>_checks``.

They run after the normalise step (or alone, from the asset's Checks tab). A run
may cover a range of days, and Dagster only ties a check result to a partition
when the step has a single partition key, so each day's result is logged as an
``AssetCheckEvaluation`` carrying that day and the day's latest materialization
(what Dagster's own results carry): the check's partition view then shows each
day's own outcome and figures as current.
"""

import warnings
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    PreviewWarning,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset_check,
)
from sqlalchemy import Engine, Select, and_, case, func, select

from fullbay_dagster.defs.dagster_private import AssetCheckEvaluationTargetMaterializationData
from fullbay_dagster.defs.partitions import daily_partitions, partition_days
from fullbay_dagster.defs.resources import WarehouseResource
from fullbay_dagster.fullbay.endpoints import Endpoint
from fullbay_dagster.warehouse import quality
from fullbay_dagster.warehouse.schema import (
    endpoint_tables,
    quarantine,
    raw_work_orders,
    work_order_lines,
    work_orders,
)

# Fullbay rounds each line to the cent, and its totals are rounded once more: allow
# one cent per line plus a tenth of a percent of the total before calling it a mismatch.
LINE_TOLERANCE_PER_LINE = Decimal("0.01")
LINE_TOLERANCE_RATIO = Decimal("0.001")
EXAMPLES = 10

WORK_ORDERS, LINES, QUARANTINE = AssetKey("work_orders"), AssetKey("work_order_lines"), AssetKey("quarantine")
FIELD_ISSUES, SCHEMA_FIELDS = AssetKey("field_issues"), AssetKey("schema_fields")


def _spec(name: str, asset: AssetKey, description: str) -> AssetCheckSpec:
    with warnings.catch_warnings():
        # Partitioned check specs are a preview in 1.13; they are what ties a result to its day.
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(name, asset=asset, description=description, partitions_def=daily_partitions)


CHECK_SPECS = [
    _spec(
        "rows_match_api_count",
        WORK_ORDERS,
        "The day's live work orders equal the invoices the API returned for it, less those quarantined.",
    ),
    _spec(
        "raw_and_normalised_agree",
        WORK_ORDERS,
        "Every live raw invoice of the day has a live work order and no work order lacks its raw invoice.",
    ),
    _spec(
        "line_sums_match_totals",
        LINES,
        "Part and labor lines sum to each invoice's partsTotal and laborTotal within one cent per line "
        "plus 0.1% of the total.",
    ),
    _spec(
        "no_quarantined_records",
        QUARANTINE,
        "Every record the API returned for the day could be stored and normalised.",
    ),
    _spec(
        "quarantine_below_one_percent",
        WORK_ORDERS,
        "At most 1% of the invoices the API returned for the day are quarantined (only invoices without a "
        "usable primaryKey or invoiceDate go there). ERROR: past that the day is missing invoices.",
    ),
    _spec(
        "no_field_issues",
        FIELD_ISSUES,
        "Every field of the day's invoices parsed into its column's type. One that did not is NULL in its "
        "column and a row of fullbay_field_issues; the invoice itself is loaded. Lists the top field paths "
        "with example values and invoice ids.",
    ),
    # Not per day: fullbay_schema_fields accumulates what every load saw, so the check
    # judges the whole table once per run, and its result is shown on no single day.
    AssetCheckSpec(
        "schema_as_known",
        asset=SCHEMA_FIELDS,
        description="Every field path the API has sent (any day, the whole fullbay_schema_fields table as of the "
        "check) is one the project knows, mapped paths arrive with the JSON types their parsers accept, and no "
        "mapped path stopped appearing.",
    ),
]
SCHEMA_AS_KNOWN = AssetCheckKey(SCHEMA_FIELDS, "schema_as_known")
SEVERITY = {
    "rows_match_api_count": AssetCheckSeverity.ERROR,
    "raw_and_normalised_agree": AssetCheckSeverity.ERROR,
    "line_sums_match_totals": AssetCheckSeverity.WARN,
    "no_quarantined_records": AssetCheckSeverity.WARN,
    "quarantine_below_one_percent": AssetCheckSeverity.ERROR,
    "no_field_issues": AssetCheckSeverity.WARN,
    "schema_as_known": AssetCheckSeverity.WARN,
    "keys_unique": AssetCheckSeverity.ERROR,
}


@multi_asset_check(specs=CHECK_SPECS, can_subset=True, name="fullbay_checks")
def fullbay_checks(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
    engine = warehouse.get_engine()
    op_context = context.op_execution_context
    selected = context.selected_asset_check_keys
    for day in partition_days(op_context):
        _log_day(op_context, day, evaluate_day(engine, day, selected))
    if SCHEMA_AS_KNOWN in selected:
        passed, metadata = schema_as_known(engine)
        yield AssetCheckResult(
            asset_key=SCHEMA_AS_KNOWN.asset_key,
            check_name=SCHEMA_AS_KNOWN.name,
            passed=passed,
            metadata=metadata,
            severity=SEVERITY[SCHEMA_AS_KNOWN.name],
        )


def _log_day(op_context: Any, day: date, outcomes: dict[AssetCheckKey, tuple[bool, dict[str, Any]]]) -> None:
    targets: dict[AssetKey, AssetCheckEvaluationTargetMaterializationData | None] = {}
    for key, (passed, metadata) in outcomes.items():
        if key.asset_key not in targets:
            targets[key.asset_key] = _judged(op_context.instance, key.asset_key, day)
        # log_event accepts check evaluations (it dispatches on them); its annotation lags
        op_context.log_event(
            AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=passed,
                metadata={"day": day.isoformat(), **metadata},
                severity=SEVERITY[key.name],
                partition=day.isoformat(),
                target_materialization_data=targets[key.asset_key],
            )
        )


def _judged(
    instance: DagsterInstance, asset_key: AssetKey, day: date
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The day's latest materialization of the asset: the one the check judged."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
    )


def evaluate_day(
    engine: Engine, day: date, selected: set[AssetCheckKey] | None = None
) -> dict[AssetCheckKey, tuple[bool, dict[str, Any]]]:
    """Each selected check's outcome for one day, with metadata a person can act on."""
    checks = {
        AssetCheckKey(WORK_ORDERS, "rows_match_api_count"): _rows_match_api_count,
        AssetCheckKey(WORK_ORDERS, "raw_and_normalised_agree"): _raw_and_normalised_agree,
        AssetCheckKey(LINES, "line_sums_match_totals"): _line_sums_match_totals,
        AssetCheckKey(QUARANTINE, "no_quarantined_records"): _no_quarantined_records,
        AssetCheckKey(WORK_ORDERS, "quarantine_below_one_percent"): _quarantine_below_one_percent,
        AssetCheckKey(FIELD_ISSUES, "no_field_issues"): _no_field_issues,
    }
    return {key: check(engine, day) for key, check in checks.items() if selected is None or key in selected}


def _rows_match_api_count(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    with engine.connect() as connection:
        live = connection.execute(
            select(func.count()).where(work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None))
        ).scalar_one()
    latest = quality.quarantine_share(engine, day)
    if latest is None:
        return False, {"live_rows": live, "problem": "no run has recorded what the API returned for this day"}
    expected = latest.api_records - latest.quarantined
    return live == expected, {
        "live_rows": live,
        "api_records": latest.api_records,
        "quarantined": latest.quarantined,
        "expected_rows": expected,
        "run_compared": latest.run_id,
        "next_step": "Re-materialize the day; if it persists compare fullbay_raw_work_orders with the API answer.",
    }


def _raw_and_normalised_agree(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    raw = select(raw_work_orders.c.fullbay_id).where(
        raw_work_orders.c.invoice_date == day, raw_work_orders.c.deleted_at.is_(None)
    )
    normalised = select(work_orders.c.fullbay_id).where(
        work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None)
    )
    quarantined = select(quarantine.c.fullbay_id).where(
        quarantine.c.partition_key == day.isoformat(),
        quarantine.c.endpoint == "invoices",
        quarantine.c.fullbay_id.is_not(None),
    )
    with engine.connect() as connection:
        raw_ids = set(connection.execute(raw).scalars())
        normalised_ids = set(connection.execute(normalised).scalars())
        quarantined_ids = set(connection.execute(quarantined).scalars())
    missing = sorted(raw_ids - normalised_ids - quarantined_ids)
    extra = sorted(normalised_ids - raw_ids)
    return not missing and not extra, {
        "raw_live": len(raw_ids),
        "normalised_live": len(normalised_ids),
        "missing_work_orders": len(missing),
        "work_orders_without_raw": len(extra),
        "examples": ", ".join([*missing, *extra][:EXAMPLES]),
    }


def _line_sums_match_totals(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    with engine.connect() as connection:
        sums = connection.execute(_line_sums_query(day)).all()
    mismatched = [row for row in sums if not _within(row)]
    return not mismatched, {
        "invoices_checked": len(sums),
        "mismatched": len(mismatched),
        "mismatches": MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "fullbay_id": row.fullbay_id,
                        "parts_total": float(row.parts_amount or 0),
                        "parts_lines": float(row.parts or 0),
                        "labor_total": float(row.labor_amount or 0),
                        "labor_lines": float(row.labor or 0),
                    }
                )
                for row in mismatched[:EXAMPLES]
            ],
            schema=TableSchema(
                columns=[
                    TableColumn("fullbay_id", "string"),
                    TableColumn("parts_total", "float"),
                    TableColumn("parts_lines", "float"),
                    TableColumn("labor_total", "float"),
                    TableColumn("labor_lines", "float"),
                ]
            ),
        ),
    }


def _no_quarantined_records(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(quarantine.c.fullbay_id, quarantine.c.reason)
            .where(quarantine.c.partition_key == day.isoformat(), quarantine.c.endpoint == "invoices")
            .order_by(quarantine.c.fullbay_id)
        ).all()
    return not rows, {
        "quarantined": len(rows),
        "examples": MetadataValue.table(
            records=[
                TableRecord({"fullbay_id": r.fullbay_id or "", "reason": r.reason[:300]}) for r in rows[:EXAMPLES]
            ],
            schema=TableSchema(columns=[TableColumn("fullbay_id", "string"), TableColumn("reason", "string")]),
        ),
        "query": MetadataValue.md(
            "`SELECT fullbay_id, reason, raw_text FROM fullbay_quarantine "
            f"WHERE partition_key = '{day.isoformat()}' AND endpoint = 'invoices'`"
        ),
    }


def _quarantine_below_one_percent(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    share = quality.quarantine_share(engine, day)
    if share is None:
        return False, {"problem": "no run has recorded what the API returned for this day"}
    return share.share <= quality.MAX_QUARANTINED_SHARE, {
        "api_records": share.api_records,
        "quarantined": share.quarantined,
        "share": MetadataValue.float(round(share.share, 4)),
        "limit": MetadataValue.float(quality.MAX_QUARANTINED_SHARE),
        "next_step": "See the quarantine asset's no_quarantined_records check for the reasons.",
    }


def _no_field_issues(engine: Engine, day: date) -> tuple[bool, dict[str, Any]]:
    issues = quality.field_issue_summary(engine, day, day)
    return issues["total"] == 0, {
        "field_issues": issues["total"],
        "invoices_with_issues": issues["invoices"],
        "top_paths": _text_table(issues["top"], ["field_path", "issues", "expected", "example_values", "invoice_ids"]),
    }


def schema_as_known(engine: Engine) -> tuple[bool, dict[str, Any]]:
    drift = quality.schema_drift(engine)
    return not drift.findings, {
        "paths_seen": drift.paths_seen,
        "unknown_paths": len(drift.unknown),
        "new_json_types": len(drift.new_types),
        "stopped_appearing": len(drift.gone),
        "findings": _text_table(drift.findings[:50], ["field_path", "finding", "json_types", "seen"]),
    }


def _text_table(rows: list[dict[str, Any]], columns: list[str]) -> MetadataValue:
    """Rows as a typed table (counts as ints, the rest as text)."""
    return MetadataValue.table(
        records=[
            TableRecord({c: row.get(c) if isinstance(row.get(c), int) else str(row.get(c, "")) for c in columns})
            for row in rows
        ],
        schema=TableSchema(
            columns=[TableColumn(c, "int" if rows and isinstance(rows[0].get(c), int) else "string") for c in columns]
        ),
    )


def _line_sums_query(day: date) -> Select[Any]:
    lines = work_order_lines
    return (
        select(
            work_orders.c.fullbay_id,
            work_orders.c.parts_amount,
            work_orders.c.labor_amount,
            func.coalesce(func.sum(case((lines.c.line_type == "part", lines.c.amount))), 0).label("parts"),
            func.coalesce(func.sum(case((lines.c.line_type == "labor", lines.c.amount))), 0).label("labor"),
            func.count(lines.c.source_key).label("line_count"),
        )
        .select_from(work_orders.outerjoin(lines, lines.c.fullbay_id == work_orders.c.fullbay_id))
        .where(and_(work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None)))
        .group_by(work_orders.c.fullbay_id, work_orders.c.parts_amount, work_orders.c.labor_amount)
    )


def _within(row: Any) -> bool:
    allowance = LINE_TOLERANCE_PER_LINE * max(int(row.line_count or 0), 1)
    for total, summed in ((row.parts_amount, row.parts), (row.labor_amount, row.labor)):
        total, summed = Decimal(str(total or 0)), Decimal(str(summed or 0))
        if abs(total - summed) > allowance + LINE_TOLERANCE_RATIO * abs(total):
            return False
    return True


# --------------------------------------------------------------------------- other endpoints
# Each chosen endpoint's typed table gets the same day-by-day judgement: its keys are
# unique, its live rows equal what the API returned (as the run log recorded it),
# and nothing was quarantined.

ENDPOINT_CHECKS = {
    "keys_unique": (
        "The day's answer sent each record key once (the run log's records_duplicated; the table's primary "
        "key keeps one row per key, so this is where a repeat shows). ERROR: one of its versions was dropped."
    ),
    "rows_match_api_count": (
        "The day's live typed rows equal the records the API returned for it (the run log's api_record_count "
        "of the latest run that fetched the day), less those quarantined."
    ),
    "no_quarantined_records": "Every record the API returned for the day could be placed (fullbay_quarantine).",
}


def endpoint_checks(endpoint: Endpoint) -> AssetChecksDefinition:
    """``<endpoint>_checks``: the checks of one endpoint's typed table, one result per day."""
    asset = AssetKey(endpoint.name)
    specs = [_spec(name, asset, description) for name, description in ENDPOINT_CHECKS.items()]

    @multi_asset_check(specs=specs, can_subset=True, name=f"{endpoint.name}_checks")
    def checks(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
        engine = warehouse.get_engine()
        op_context = context.op_execution_context
        for day in partition_days(op_context):
            _log_day(op_context, day, evaluate_endpoint_day(engine, endpoint, day, context.selected_asset_check_keys))
        yield from ()  # every result above is logged with its day

    return checks


def evaluate_endpoint_day(
    engine: Engine, endpoint: Endpoint, day: date, selected: set[AssetCheckKey] | None = None
) -> dict[AssetCheckKey, tuple[bool, dict[str, Any]]]:
    """Each selected check of ``endpoint`` for one day, with metadata a person can act on."""
    typed = endpoint_tables[endpoint.name]
    live = and_(typed.c.record_date == day, typed.c.deleted_at.is_(None))
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).where(live)).scalar_one()
    logged = quality.quarantine_share(engine, day, endpoint.name)
    never = {"live_rows": rows, "problem": "no run has recorded what the API returned for this day"}

    def keys_unique() -> tuple[bool, dict[str, Any]]:
        if logged is None:
            return False, never
        return logged.duplicated == 0, {
            "repeated_in_answer": logged.duplicated,
            "live_rows": rows,
            "run_compared": logged.run_id,
            "next_step": f"Look for keys sent twice in the day's answer of {endpoint.php}.",
        }

    def rows_match_api_count() -> tuple[bool, dict[str, Any]]:
        if logged is None:
            return False, never
        expected = logged.api_records - logged.quarantined
        return rows == expected, {
            "live_rows": rows,
            "api_records": logged.api_records,
            "quarantined": logged.quarantined,
            "expected_rows": expected,
            "run_compared": logged.run_id,
            "next_step": f"Re-materialize the day; if it persists compare {typed.name} with fullbay_raw_records.",
        }

    def no_quarantined_records() -> tuple[bool, dict[str, Any]]:
        with engine.connect() as connection:
            held = connection.execute(
                select(quarantine.c.fullbay_id, quarantine.c.reason)
                .where(quarantine.c.partition_key == day.isoformat(), quarantine.c.endpoint == endpoint.name)
                .order_by(quarantine.c.fullbay_id)
            ).all()
        return not held, {
            "quarantined": len(held),
            "examples": _text_table(
                [{"fullbay_id": r.fullbay_id or "", "reason": r.reason[:300]} for r in held[:EXAMPLES]],
                ["fullbay_id", "reason"],
            ),
            "query": MetadataValue.md(
                "`SELECT fullbay_id, reason, raw_text FROM fullbay_quarantine "
                f"WHERE partition_key = '{day.isoformat()}' AND endpoint = '{endpoint.name}'`"
            ),
        }

    checks = {
        AssetCheckKey(AssetKey(endpoint.name), "keys_unique"): keys_unique,
        AssetCheckKey(AssetKey(endpoint.name), "rows_match_api_count"): rows_match_api_count,
        AssetCheckKey(AssetKey(endpoint.name), "no_quarantined_records"): no_quarantined_records,
    }
    return {key: check() for key, check in checks.items() if selected is None or key in selected}
