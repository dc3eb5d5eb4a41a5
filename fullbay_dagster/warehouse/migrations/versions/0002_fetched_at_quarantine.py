"""fetched_at, quarantine

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:13:57.209894
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fullbay_quarantine",
        sa.Column("partition_key", sa.String(length=20), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False, comment="sha256 of the record's JSON text"),
        sa.Column("fullbay_id", sa.String(length=64), nullable=True, comment="when the record has a usable primaryKey"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False, comment="the record as JSON text (NUL and NaN escaped)"),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("partition_key", "record_hash"),
    )
    with op.batch_alter_table("fullbay_raw_work_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "fetched_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="when the API answer holding this copy was received",
            )
        )

    with op.batch_alter_table("fullbay_work_orders", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at",
            existing_type=postgresql.TIMESTAMP(timezone=True),
            comment="invoice created: Fullbay local time read in FULLBAY_TIMEZONE",
            existing_comment="invoice created, shop timezone",
            existing_nullable=True,
        )

    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.add_column(sa.Column("records_quarantined", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.drop_column("records_quarantined")

    with op.batch_alter_table("fullbay_work_orders", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at",
            existing_type=postgresql.TIMESTAMP(timezone=True),
            comment="invoice created, shop timezone",
            existing_comment="invoice created: Fullbay local time read in FULLBAY_TIMEZONE",
            existing_nullable=True,
        )

    with op.batch_alter_table("fullbay_raw_work_orders", schema=None) as batch_op:
        batch_op.drop_column("fetched_at")

    op.drop_table("fullbay_quarantine")
