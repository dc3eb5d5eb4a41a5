"""Data-quality checks on ``work_orders``: fields that did not parse, invoices
that could not be placed, and what the API sends compared with what the project
knows. The figures come from ``warehouse.quality``; this module only words them
as Dagster check results, evaluated in the ``work_orders`` step for its days."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from sqlalchemy import Engine

from fullbay_dagster.warehouse import quality

QUALITY_CHECK_SPECS = [
    AssetCheckSpec(
        "no_field_issues",
        asset="work_orders",
        description=(
            "Every field of the day's invoices parsed into its column's type. A field that did not is "
            "NULL in its column and a row of fullbay_field_issues (the raw JSON keeps the value); the "
            "invoice itself is loaded. Lists the top field paths with example values and invoice ids."
        ),
    ),
    AssetCheckSpec(
        "quarantine_below_one_percent",
        asset="work_orders",
        description=(
            "At most 1% of the invoices the API returned for a day are in fullbay_quarantine (only "
            "invoices without a usable primaryKey or invoiceDate go there). Fails with ERROR severity: "
            "the day is missing invoices."
        ),
    ),
    AssetCheckSpec(
        "schema_as_known",
        asset="work_orders",
        description=(
            "Every field path the API sent is one the project knows, mapped paths arrive with the JSON "
            "types their parsers accept, and no mapped path stopped appearing (fullbay_schema_fields)."
        ),
    ),
]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> MetadataValue:
    if not rows:
        return MetadataValue.md("_none_")
    return MetadataValue.md(str(pd.DataFrame(rows, columns=columns).to_markdown(index=False)))


def evaluate_quality(engine: Engine, run_id: str, days: list[date]) -> list[AssetCheckResult]:
    span = f"{days[0]}..{days[-1]}"
    issues = quality.field_issue_summary(engine, days[0], days[-1])
    shares = quality.quarantine_shares(engine, run_id, days)
    over = [s for s in shares if s.share > quality.MAX_QUARANTINED_SHARE]
    drift = quality.schema_drift(engine)
    return [
        AssetCheckResult(
            check_name="no_field_issues",
            passed=issues["total"] == 0,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "days": span,
                "field_issues": issues["total"],
                "invoices_with_issues": issues["invoices"],
                "top_paths": _table(
                    issues["top"], ["field_path", "issues", "expected", "example_values", "invoice_ids"]
                ),
            },
        ),
        AssetCheckResult(
            check_name="quarantine_below_one_percent",
            passed=not over,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "days": span,
                "quarantined": sum(s.quarantined for s in shares),
                "api_records": sum(s.api_records for s in shares),
                "days_over": _table(
                    [
                        {
                            "day": s.day,
                            "api_records": s.api_records,
                            "quarantined": s.quarantined,
                            "share": f"{s.share:.1%}",
                        }
                        for s in over
                    ],
                    ["day", "api_records", "quarantined", "share"],
                ),
            },
        ),
        AssetCheckResult(
            check_name="schema_as_known",
            passed=not drift.findings,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "paths_seen": drift.paths_seen,
                "unknown_paths": len(drift.unknown),
                "new_json_types": len(drift.new_types),
                "stopped_appearing": len(drift.gone),
                "findings": _table(drift.findings[:50], ["field_path", "finding", "json_types", "seen"]),
            },
        ),
    ]
