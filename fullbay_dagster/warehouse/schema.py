"""Warehouse tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create
and evolve them; this module is what the loaders and the autogenerate diff read."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS, Typed

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
Money = Numeric(16, 4)


class Timestamp(TypeDecorator[datetime]):
    """Timezone-aware in and out on every backend: stored as UTC. PostgreSQL's
    timestamptz does that itself; SQLite would drop the offset silently."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def fitted(value: str, column: Column[Any]) -> str:
    """``value`` as a key of ``column``: cut to its width where the API makes it longer
    (an unknown field's name, a customer's title), ending in a digest of the whole so
    that two long values stay two rows. A failed write would stop the day's load."""
    limit = column.type.length  # type: ignore[attr-defined]
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[: limit - 18]}…#{digest}"


raw_work_orders = Table(
    "fullbay_raw_work_orders",
    metadata,
    Column("fullbay_id", String(64), primary_key=True, comment="invoice primaryKey"),
    Column("invoice_date", Date, nullable=False, index=True),
    Column("raw_data", Json, nullable=False, comment="the invoice exactly as the API returned it"),
    Column("content_hash", String(64), nullable=False, comment="sha256 of the canonical JSON"),
    Column("first_seen_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Column("last_changed_at", Timestamp(), nullable=False),
    Column("deleted_at", Timestamp(), comment="set when the invoice vanished from its day's answer"),
    Column("last_run_id", String(64)),
    Column("fetched_at", Timestamp(), comment="when the API answer holding this copy was received"),
)

work_orders = Table(
    "fullbay_work_orders",
    metadata,
    Column("fullbay_id", String(64), primary_key=True),
    Column("work_order_number", String(64), comment="ServiceOrder.repairOrderNumber (RO #)"),
    Column("invoice_number", String(64)),
    Column("invoice_date", Date, nullable=False, index=True),
    Column("due_date", Date),
    Column("service_order_id", String(64)),
    Column("customer_id", String(64), index=True),
    Column("customer_name", Text),
    Column("shop_title", Text),
    Column("vehicle_info", Json),
    Column("status", String(20), nullable=False, comment="from balance: paid, partially_paid, open, credit"),
    Column("created_at", Timestamp(), comment="invoice created: Fullbay local time read in FULLBAY_TIMEZONE"),
    Column("updated_at", Timestamp(), nullable=False, comment="when this row's content last changed"),
    Column("total_amount", Money),
    Column("labor_amount", Money),
    Column("parts_amount", Money),
    Column("tax_amount", Money),
    Column("supplies_amount", Money),
    Column("misc_amount", Money),
    Column("subtotal_amount", Money),
    Column("balance", Money),
    Column("labor_hours", Money),
    Column("exported", Boolean),
    Column("so_created_at", Timestamp()),
    Column("so_started_at", Timestamp()),
    Column("so_completed_at", Timestamp()),
    Column("raw_data", Json, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("ingestion_timestamp", Timestamp(), nullable=False),
    Column("ingestion_source", String(200), nullable=False),
    Column("deleted_at", Timestamp()),
)

work_order_lines = Table(
    "fullbay_work_order_lines",
    metadata,
    Column(
        "fullbay_id",
        String(64),
        ForeignKey("fullbay_work_orders.fullbay_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("line_type", String(10), primary_key=True, comment="part, labor or misc"),
    Column("source_key", String(64), primary_key=True, comment="Fullbay's key of the part/correction/charge"),
    Column("complaint_id", String(64)),
    Column("description", Text),
    Column("component", Text, comment="part number for parts, global component for labor"),
    Column("quantity", Money, comment="units for parts, hours for labor"),
    Column("unit_price", Money),
    Column("unit_cost", Money),
    Column("rate_name", Text, comment="labor: Fullbay's laborRate, the name of a rate such as Standard"),
    Column("amount", Money, comment="what the customer pays for the line; NULL when it did not parse"),
    Column("taxable", Boolean),
    Column("technicians", Json),
    Column("created_at", Timestamp()),
)

ingestion_metadata = Table(
    "ingestion_metadata",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column(
        "execution_id",
        String(200),
        nullable=False,
        unique=True,
        comment="<run id>:<partition> for invoices, <run id>:<endpoint>:<partition> for the other endpoints",
    ),
    Column("partition_key", String(20), nullable=False),
    Column("dagster_run_id", String(64)),
    Column("start_time", Timestamp(), nullable=False),
    Column("end_time", Timestamp()),
    Column("status", String(20), nullable=False, comment="running, success or failed"),
    Column("records_processed", Integer, nullable=False, default=0),
    Column("records_inserted", Integer, nullable=False, default=0),
    Column("records_updated", Integer, nullable=False, default=0),
    Column("records_unchanged", Integer, nullable=False, default=0),
    Column("records_deleted", Integer, nullable=False, default=0),
    Column("api_record_count", Integer, comment="records the API returned for the day"),
    Column("records_quarantined", Integer, nullable=False, default=0, server_default="0"),
    Column(
        "field_issues",
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="fields of the day's invoices that did not parse (fullbay_field_issues)",
    ),
    Column("error_message", Text),
    Column("api_endpoint", String(200)),
    Column(
        "endpoint",
        String(40),
        nullable=False,
        server_default="invoices",
        comment="which endpoint's load the row describes, e.g. invoices or customer_payments",
    ),
    Column(
        "records_duplicated",
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="records of the day's answer whose key the answer had already sent",
    ),
    Index("ix_ingestion_metadata_partition", "partition_key", "start_time"),
    Index("ix_ingestion_metadata_endpoint_partition", "endpoint", "partition_key", "start_time"),
)

quarantine = Table(
    "fullbay_quarantine",
    metadata,
    Column("partition_key", String(20), primary_key=True),
    Column("record_hash", String(64), primary_key=True, comment="sha256 of the record's JSON text"),
    Column("fullbay_id", String(64), comment="when the record has a usable primaryKey"),
    Column(
        "endpoint",
        String(40),
        nullable=False,
        server_default="invoices",
        comment="which endpoint sent it; record_hash of other endpoints includes this name",
    ),
    Column("reason", Text, nullable=False),
    Column("raw_text", Text, nullable=False, comment="the record as JSON text (NUL and NaN escaped)"),
    Column("first_seen_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Column("last_run_id", String(64)),
)

field_issues = Table(
    "fullbay_field_issues",
    metadata,
    Column("fullbay_id", String(64), primary_key=True),
    Column("field_path", String(400), primary_key=True, comment="with array positions, e.g. X.Parts[2].cost"),
    Column("invoice_date", Date, nullable=False, index=True, comment="the partition day"),
    Column("expected_type", String(100), nullable=False),
    Column("observed_value", Text, nullable=False, comment="the value as JSON text, truncated"),
    Column("first_seen_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Column("last_run_id", String(64)),
    comment="A field that did not parse into its column's type: the column holds NULL, raw_data the value.",
)

schema_fields = Table(
    "fullbay_schema_fields",
    metadata,
    Column("field_path", String(400), primary_key=True, comment="array positions folded to []"),
    Column("json_types", Json, nullable=False, comment="JSON type -> times seen"),
    Column("seen_count", BigInteger, nullable=False),
    Column("mapped_column", String(100), comment="table.column the project loads the field into"),
    Column("first_seen_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Column("last_run_id", String(64)),
    comment="What the API sends: every field path seen in loaded invoices, with its JSON types.",
)


# --------------------------------------------------------------------------- other endpoints
# The six date-windowed endpoints besides invoices share one raw table and get one
# typed table each (plus a line table where they carry a list), built from their
# descriptions in ``fullbay.endpoints``.

raw_records = Table(
    "fullbay_raw_records",
    metadata,
    Column("endpoint", String(40), primary_key=True, comment="endpoint name, e.g. customer_payments"),
    Column("fullbay_id", String(64), primary_key=True, comment="the record's key field"),
    Column("record_date", Date, nullable=False, comment="the day the API returned it for (or its date field)"),
    Column("raw_data", Json, nullable=False, comment="the record exactly as the API returned it"),
    Column("content_hash", String(64), nullable=False, comment="sha256 of the canonical JSON"),
    Column("first_seen_at", Timestamp(), nullable=False),
    Column("last_seen_at", Timestamp(), nullable=False),
    Column("last_changed_at", Timestamp(), nullable=False),
    Column("deleted_at", Timestamp(), comment="set when the record vanished from its day's answer"),
    Column("last_run_id", String(64)),
    Column("fetched_at", Timestamp(), comment="when the API answer holding this copy was received"),
    Index("ix_fullbay_raw_records_endpoint_date", "endpoint", "record_date"),
    comment="Records of the date-windowed endpoints other than invoices, as the API sent them.",
)

_KINDS: dict[str, Any] = {"id": String(64), "text": Text(), "number": Money, "date": Date()}


def _typed(columns: tuple[Typed, ...]) -> list[Column[Any]]:
    return [Column(t.column, _KINDS[t.kind], comment=f"from {t.path}") for t in columns]


def _endpoint_tables() -> tuple[dict[str, Table], dict[str, Table]]:
    typed: dict[str, Table] = {}
    lines: dict[str, Table] = {}
    for endpoint in GENERIC_ENDPOINTS:
        typed[endpoint.name] = Table(
            endpoint.table,
            metadata,
            Column("fullbay_id", String(64), primary_key=True),
            Column("record_date", Date, nullable=False, index=True),
            *_typed(endpoint.columns),
            Column("content_hash", String(64), nullable=False, comment="of the raw record this row was built from"),
            Column("updated_at", Timestamp(), nullable=False),
            Column("deleted_at", Timestamp()),
            Column("last_run_id", String(64)),
            comment=f"{endpoint.php}: typed columns; every other field is in fullbay_raw_records.raw_data.",
        )
        if endpoint.lines_table:
            lines[endpoint.name] = Table(
                endpoint.lines_table,
                metadata,
                Column(
                    "fullbay_id",
                    String(64),
                    ForeignKey(f"{endpoint.table}.fullbay_id", ondelete="CASCADE"),
                    primary_key=True,
                ),
                Column("line_index", Integer, primary_key=True, comment=f"position in {endpoint.lines_path}[]"),
                Column("record_date", Date, nullable=False, index=True),
                *_typed(endpoint.line_columns),
                comment=f"{endpoint.php}: one row per element of {endpoint.lines_path}[].",
            )
    return typed, lines


endpoint_tables, endpoint_line_tables = _endpoint_tables()

receivables = Table(
    "fullbay_receivables",
    metadata,
    Column("customer_key", String(200), primary_key=True, comment="customer_id, or name:<title> without one"),
    Column("customer_id", String(64)),
    Column("customer_name", Text),
    Column("current", Money, nullable=False, comment="open, not yet past due"),
    Column("days_1_30", Money, nullable=False),
    Column("days_31_60", Money, nullable=False),
    Column("days_61_90", Money, nullable=False),
    Column("days_90_plus", Money, nullable=False),
    Column("open_balance", Money, nullable=False),
    Column("as_of", Date, primary_key=True, comment="the day the aging is computed for (a daily partition)"),
    Column("computed_at", Timestamp(), nullable=False),
    comment="Open balance by customer, aged by days past due (invoices less the payments loaded since).",
)
