"""run log rows of every endpoint: endpoint, records_duplicated

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        # Rows written before this revision are all invoices' rows.
        batch_op.add_column(
            sa.Column(
                "endpoint",
                sa.String(length=40),
                server_default="invoices",
                nullable=False,
                comment="which endpoint's load the row describes, e.g. invoices or customer_payments",
            )
        )
        batch_op.add_column(
            sa.Column(
                "records_duplicated",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="records of the day's answer whose key the answer had already sent",
            )
        )
        batch_op.alter_column(
            "execution_id",
            existing_type=sa.String(length=200),
            comment="<run id>:<partition> for invoices, <run id>:<endpoint>:<partition> for the other endpoints",
            existing_comment="<run id>:<partition>",
            existing_nullable=False,
        )
        batch_op.create_index(
            "ix_ingestion_metadata_endpoint_partition", ["endpoint", "partition_key", "start_time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ingestion_metadata", schema=None) as batch_op:
        batch_op.drop_index("ix_ingestion_metadata_endpoint_partition")
        batch_op.alter_column(
            "execution_id",
            existing_type=sa.String(length=200),
            comment="<run id>:<partition>",
            existing_comment="<run id>:<partition> for invoices, <run id>:<endpoint>:<partition> for the other endpoints",
            existing_nullable=False,
        )
        batch_op.drop_column("records_duplicated")
        batch_op.drop_column("endpoint")
