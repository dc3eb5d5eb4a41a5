"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 06:46:05.769688
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fullbay_raw_work_orders",
        sa.Column("fullbay_id", sa.String(length=64), nullable=False, comment="invoice primaryKey"),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column(
            "raw_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            comment="the invoice exactly as the API returned it",
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False, comment="sha256 of the canonical JSON"),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="set when the invoice vanished from its day's answer",
        ),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fullbay_id"),
    )
    with op.batch_alter_table("fullbay_raw_work_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fullbay_raw_work_orders_invoice_date"), ["invoice_date"], unique=False)

    op.create_table(
        "fullbay_work_orders",
        sa.Column("fullbay_id", sa.String(length=64), nullable=False),
        sa.Column(
            "work_order_number", sa.String(length=64), nullable=True, comment="ServiceOrder.repairOrderNumber (RO #)"
        ),
        sa.Column("invoice_number", sa.String(length=64), nullable=True),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("service_order_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("customer_name", sa.Text(), nullable=True),
        sa.Column("shop_title", sa.Text(), nullable=True),
        sa.Column(
            "vehicle_info", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "status", sa.String(length=20), nullable=False, comment="from balance: paid, partially_paid, open, credit"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True, comment="invoice created, shop timezone"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, comment="when this row's content last changed"
        ),
        sa.Column("total_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("labor_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("parts_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("tax_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("supplies_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("misc_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("subtotal_amount", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("balance", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("labor_hours", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("exported", sa.Boolean(), nullable=True),
        sa.Column("so_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("so_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("so_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "raw_data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingestion_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingestion_source", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("fullbay_id"),
    )
    with op.batch_alter_table("fullbay_work_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fullbay_work_orders_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fullbay_work_orders_invoice_date"), ["invoice_date"], unique=False)

    op.create_table(
        "ingestion_metadata",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=200), nullable=False, comment="<run id>:<partition>"),
        sa.Column("partition_key", sa.String(length=20), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False, comment="running, success or failed"),
        sa.Column("records_processed", sa.Integer(), nullable=False),
        sa.Column("records_inserted", sa.Integer(), nullable=False),
        sa.Column("records_updated", sa.Integer(), nullable=False),
        sa.Column("records_unchanged", sa.Integer(), nullable=False),
        sa.Column("records_deleted", sa.Integer(), nullable=False),
        sa.Column("api_record_count", sa.Integer(), nullable=True, comment="records the API returned for the day"),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("api_endpoint", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("execution_id"),
    )
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.create_index("ix_ingestion_metadata_partition", ["partition_key", "start_time"], unique=False)

    op.create_table(
        "fullbay_work_order_lines",
        sa.Column("fullbay_id", sa.String(length=64), nullable=False),
        sa.Column("line_type", sa.String(length=10), nullable=False, comment="part, labor or misc"),
        sa.Column(
            "source_key", sa.String(length=64), nullable=False, comment="Fullbay's key of the part/correction/charge"
        ),
        sa.Column("complaint_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("component", sa.Text(), nullable=True, comment="part number for parts, global component for labor"),
        sa.Column(
            "quantity", sa.Numeric(precision=16, scale=4), nullable=True, comment="units for parts, hours for labor"
        ),
        sa.Column("unit_price", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column("unit_cost", sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column(
            "amount", sa.Numeric(precision=16, scale=4), nullable=False, comment="what the customer pays for the line"
        ),
        sa.Column("taxable", sa.Boolean(), nullable=True),
        sa.Column(
            "technicians", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["fullbay_id"], ["fullbay_work_orders.fullbay_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fullbay_id", "line_type", "source_key"),
    )


def downgrade() -> None:
    op.drop_table("fullbay_work_order_lines")
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.drop_index("ix_ingestion_metadata_partition")

    op.drop_table("ingestion_metadata")
    with op.batch_alter_table("fullbay_work_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fullbay_work_orders_invoice_date"))
        batch_op.drop_index(batch_op.f("ix_fullbay_work_orders_customer_id"))

    op.drop_table("fullbay_work_orders")
    with op.batch_alter_table("fullbay_raw_work_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fullbay_raw_work_orders_invoice_date"))

    op.drop_table("fullbay_raw_work_orders")
