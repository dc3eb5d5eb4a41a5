"""A few rows of the loaded days, shown as a table in the asset's run metadata."""

from __future__ import annotations

from datetime import date

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema
from sqlalchemy import Engine, select

from fullbay_dagster.warehouse.schema import work_orders

PREVIEW_COLUMNS = ("fullbay_id", "invoice_date", "work_order_number", "customer_name", "total_amount", "status")


def preview_table(engine: Engine, days: list[date], limit: int = 10) -> TableMetadataValue:
    columns = [work_orders.c[name] for name in PREVIEW_COLUMNS]
    with engine.connect() as connection:
        rows = connection.execute(
            select(*columns)
            .where(work_orders.c.invoice_date.between(days[0], days[-1]), work_orders.c.deleted_at.is_(None))
            .order_by(work_orders.c.invoice_date, work_orders.c.fullbay_id)
            .limit(limit)
        ).all()
    return MetadataValue.table(
        records=[
            TableRecord({name: None if v is None else str(v) for name, v in row._mapping.items()}) for row in rows
        ],
        schema=TableSchema(columns=[TableColumn(name, "string") for name in PREVIEW_COLUMNS]),
    )
