"""Asset checks on the normalised work orders, evaluated for the days a run loaded.

They run inside the ``work_orders`` step (``check_specs``) because that is where
the run's partition range is known; each result says which days it covered.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec
from sqlalchemy import Engine, Select, and_, case, func, select

from fullbay_dagster.warehouse import runs
from fullbay_dagster.warehouse.schema import ingestion_metadata, quarantine, work_order_lines, work_orders

# Fullbay rounds each line to the cent, and its totals are rounded once more: allow
# one cent per line plus a tenth of a percent of the total before calling it a mismatch.
LINE_TOLERANCE_PER_LINE = Decimal("0.01")
LINE_TOLERANCE_RATIO = Decimal("0.001")

CHECK_SPECS = [
    AssetCheckSpec(
        "no_quarantined_records",
        asset="work_orders",
        description=(
            "Every record the API returned could be loaded and normalised; the others are in "
            "fullbay_quarantine with the reason."
        ),
    ),
    AssetCheckSpec("unique_fullbay_id", asset="work_orders", description="No invoice appears twice."),
    AssetCheckSpec(
        "line_sums_match_totals",
        asset="work_orders",
        description=(
            "Part and labor lines sum to each invoice's partsTotal and laborTotal within one cent "
            "per line plus 0.1% of the total."
        ),
    ),
    AssetCheckSpec(
        "rows_match_api_count",
        asset="work_orders",
        description=("Live rows per day equal the distinct invoices the API returned for it, less those quarantined."),
    ),
]


def quarantine_check(engine: Engine, run_id: str, days: list[date]) -> AssetCheckResult:
    with engine.connect() as connection:
        rows = connection.execute(
            select(quarantine.c.partition_key, quarantine.c.fullbay_id, quarantine.c.reason)
            .where(quarantine.c.last_run_id == run_id)
            .order_by(quarantine.c.partition_key)
        ).all()
    examples = "; ".join(f"{r.partition_key} {r.fullbay_id or '(no id)'}: {r.reason}" for r in rows[:10])
    return AssetCheckResult(
        check_name="no_quarantined_records",
        passed=not rows,
        severity=AssetCheckSeverity.WARN,
        metadata={"days": f"{days[0]}..{days[-1]}", "quarantined": len(rows), "examples": examples[:2000]},
    )


def evaluate_checks(engine: Engine, run_id: str, days: list[date]) -> list[AssetCheckResult]:
    first, last = days[0], days[-1]
    span = {"days": f"{first}..{last}"}
    with engine.connect() as connection:
        duplicates = connection.execute(
            select(func.count()).select_from(
                select(work_orders.c.fullbay_id).group_by(work_orders.c.fullbay_id).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        sums = connection.execute(_line_sums_query(first, last)).all()
        loaded: dict[date, int] = dict(
            connection.execute(
                select(work_orders.c.invoice_date, func.count())
                .where(work_orders.c.invoice_date.between(first, last), work_orders.c.deleted_at.is_(None))
                .group_by(work_orders.c.invoice_date)
            ).all()
        )
        expected = dict(
            connection.execute(
                select(
                    ingestion_metadata.c.partition_key,
                    ingestion_metadata.c.api_record_count - ingestion_metadata.c.records_quarantined,
                ).where(ingestion_metadata.c.execution_id.in_([runs.execution_id(run_id, d) for d in days]))
            ).all()
        )
    mismatched = [row.fullbay_id for row in sums if not _within(row)]
    wrong_days = {
        day.isoformat(): {"rows": loaded.get(day, 0), "api": expected.get(day.isoformat())}
        for day in days
        if loaded.get(day, 0) != expected.get(day.isoformat())
    }
    return [
        quarantine_check(engine, run_id, days),
        AssetCheckResult(
            check_name="unique_fullbay_id", passed=duplicates == 0, metadata={**span, "duplicates": duplicates}
        ),
        AssetCheckResult(
            check_name="line_sums_match_totals",
            passed=not mismatched,
            severity=AssetCheckSeverity.WARN,
            metadata={
                **span,
                "invoices_checked": len(sums),
                "mismatched": len(mismatched),
                "examples": ", ".join(mismatched[:10]),
            },
        ),
        AssetCheckResult(
            check_name="rows_match_api_count",
            passed=not wrong_days,
            metadata={**span, "days_checked": len(days), "days_off": str(wrong_days)[:2000]},
        ),
    ]


def _line_sums_query(first: date, last: date) -> Select[Any]:
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
        .where(and_(work_orders.c.invoice_date.between(first, last), work_orders.c.deleted_at.is_(None)))
        .group_by(work_orders.c.fullbay_id, work_orders.c.parts_amount, work_orders.c.labor_amount)
    )


def _within(row: Any) -> bool:
    allowance = LINE_TOLERANCE_PER_LINE * max(int(row.line_count or 0), 1)
    for total, summed in ((row.parts_amount, row.parts), (row.labor_amount, row.labor)):
        total, summed = Decimal(str(total or 0)), Decimal(str(summed or 0))
        if abs(total - summed) > allowance + LINE_TOLERANCE_RATIO * abs(total):
            return False
    return True
