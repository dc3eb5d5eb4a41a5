"""What each table holds for one partition day: the figures shown on that day's page."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    field_issues,
    ingestion_metadata,
    quarantine,
    raw_work_orders,
    schema_fields,
    work_order_lines,
    work_orders,
)

PREVIEW_COLUMNS = ("fullbay_id", "invoice_date", "work_order_number", "customer_name", "status", "total_amount")


def day_row_counts(engine: Engine, day: date, tables: Collection[str] | None = None) -> dict[str, int]:
    """Rows of the day in each table (or in ``tables``), by table name (live rows only
    where rows can be deleted); for ``fullbay_schema_fields``, which is not kept per day,
    the whole table. A step asks only for its own tables: each count is a query, once
    per day of the run."""
    key = day.isoformat()
    queries = {
        raw_work_orders.name: select(func.count()).where(
            raw_work_orders.c.invoice_date == day, raw_work_orders.c.deleted_at.is_(None)
        ),
        work_orders.name: select(func.count()).where(
            work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None)
        ),
        work_order_lines.name: select(func.count())
        .select_from(work_order_lines.join(work_orders, work_orders.c.fullbay_id == work_order_lines.c.fullbay_id))
        .where(work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None)),
        quarantine.name: select(func.count()).where(
            quarantine.c.partition_key == key, quarantine.c.endpoint == "invoices"
        ),
        ingestion_metadata.name: select(func.count()).where(
            ingestion_metadata.c.partition_key == key, ingestion_metadata.c.endpoint == "invoices"
        ),
        field_issues.name: select(func.count()).where(  # the other endpoints' paths are "<endpoint>:<path>"
            field_issues.c.invoice_date == day, ~field_issues.c.field_path.contains(":")
        ),
        # not per day: one row per field path the API has sent, whichever day it came on
        schema_fields.name: select(func.count()).select_from(schema_fields),
    }
    with engine.connect() as connection:
        return {
            name: int(connection.execute(query).scalar_one())
            for name, query in queries.items()
            if tables is None or name in tables
        }


def endpoint_day_rows(engine: Engine, endpoint: str, day: date) -> dict[str, int]:
    """Live rows of the day in an endpoint's typed table and its line table (lines of
    live records), by table name: what the day holds, whatever this run rewrote."""
    typed = endpoint_tables[endpoint]
    live = (typed.c.record_date == day, typed.c.deleted_at.is_(None))
    queries = {typed.name: select(func.count()).where(*live)}
    lines = endpoint_line_tables.get(endpoint)
    if lines is not None:
        queries[lines.name] = (
            select(func.count()).select_from(lines.join(typed, typed.c.fullbay_id == lines.c.fullbay_id)).where(*live)
        )
    with engine.connect() as connection:
        return {name: int(connection.execute(query).scalar_one()) for name, query in queries.items()}


def preview_rows(engine: Engine, day: date, limit: int = 5) -> list[dict[str, Any]]:
    """A few live work orders of the day, money as floats (JSON-friendly), dates as text."""
    columns = [work_orders.c[name] for name in PREVIEW_COLUMNS]
    with engine.connect() as connection:
        rows = connection.execute(
            select(*columns)
            .where(work_orders.c.invoice_date == day, work_orders.c.deleted_at.is_(None))
            .order_by(work_orders.c.fullbay_id)
            .limit(limit)
        ).all()
    return [{name: _plain(value) for name, value in row._mapping.items()} for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
