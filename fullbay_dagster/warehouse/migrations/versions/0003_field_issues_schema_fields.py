"""field issues, schema fields, tolerant lines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 09:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "fullbay_field_issues",
        sa.Column("fullbay_id", sa.String(length=64), nullable=False),
        sa.Column(
            "field_path", sa.String(length=400), nullable=False, comment="with array positions, e.g. X.Parts[2].cost"
        ),
        sa.Column("invoice_date", sa.Date(), nullable=False, comment="the partition day"),
        sa.Column("expected_type", sa.String(length=100), nullable=False),
        sa.Column("observed_value", sa.Text(), nullable=False, comment="the value as JSON text, truncated"),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fullbay_id", "field_path"),
        comment="A field that did not parse into its column's type: the column holds NULL, raw_data the value.",
    )
    with op.batch_alter_table("fullbay_field_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fullbay_field_issues_invoice_date"), ["invoice_date"], unique=False)

    op.create_table(
        "fullbay_schema_fields",
        sa.Column("field_path", sa.String(length=400), nullable=False, comment="array positions folded to []"),
        sa.Column("json_types", _JSON, nullable=False, comment="JSON type -> times seen"),
        sa.Column("seen_count", sa.BigInteger(), nullable=False),
        sa.Column(
            "mapped_column", sa.String(length=100), nullable=True, comment="table.column the project loads the field into"
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("field_path"),
        comment="What the API sends: every field path seen in loaded invoices, with its JSON types.",
    )
    with op.batch_alter_table("fullbay_work_order_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rate_name",
                sa.Text(),
                nullable=True,
                comment="labor: Fullbay's laborRate, the name of a rate such as Standard",
            )
        )
        batch_op.alter_column(
            "amount",
            existing_type=sa.Numeric(precision=16, scale=4),
            nullable=True,
            comment="what the customer pays for the line; NULL when it did not parse",
            existing_comment="what the customer pays for the line",
        )
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "field_issues",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="fields of the day's invoices that did not parse (fullbay_field_issues)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.drop_column("field_issues")
    # Lines whose amount did not parse cannot go back under NOT NULL: they are dropped.
    op.execute("DELETE FROM fullbay_work_order_lines WHERE amount IS NULL")
    with op.batch_alter_table("fullbay_work_order_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "amount",
            existing_type=sa.Numeric(precision=16, scale=4),
            nullable=False,
            comment="what the customer pays for the line",
            existing_comment="what the customer pays for the line; NULL when it did not parse",
        )
        batch_op.drop_column("rate_name")
    op.drop_table("fullbay_schema_fields")
    with op.batch_alter_table("fullbay_field_issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fullbay_field_issues_invoice_date"))
    op.drop_table("fullbay_field_issues")
