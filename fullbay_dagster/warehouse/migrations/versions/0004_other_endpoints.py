"""other endpoints: raw records, typed and line tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:15:58.992345
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('fullbay_adjustments',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('part_number', sa.Text(), nullable=True, comment='from partNumber'),
    sa.Column('quantity', sa.Numeric(precision=16, scale=4), nullable=True, comment='from quantity'),
    sa.Column('cost', sa.Numeric(precision=16, scale=4), nullable=True, comment='from cost'),
    sa.Column('reason', sa.Text(), nullable=True, comment='from reason'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getAdjustments.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_adjustments_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_counter_sales',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True, comment='from Customer.customerId'),
    sa.Column('customer_title', sa.Text(), nullable=True, comment='from Customer.title'),
    sa.Column('sale_number', sa.Text(), nullable=True, comment='from saleNumber'),
    sa.Column('sub_total', sa.Numeric(precision=16, scale=4), nullable=True, comment='from subTotal'),
    sa.Column('tax_total', sa.Numeric(precision=16, scale=4), nullable=True, comment='from taxTotal'),
    sa.Column('total', sa.Numeric(precision=16, scale=4), nullable=True, comment='from total'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getCounterSales.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_counter_sales', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_counter_sales_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_customer_credits',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True, comment='from Customer.customerId'),
    sa.Column('customer_title', sa.Text(), nullable=True, comment='from Customer.title'),
    sa.Column('amount', sa.Numeric(precision=16, scale=4), nullable=True, comment='from amount'),
    sa.Column('invoice_fullbay_id', sa.String(length=64), nullable=True, comment='from invoicePrimaryKey'),
    sa.Column('credit_number', sa.Text(), nullable=True, comment='from creditNumber'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getCustomerCredits.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_customer_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_customer_credits_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_customer_payments',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True, comment='from Customer.customerId'),
    sa.Column('customer_title', sa.Text(), nullable=True, comment='from Customer.title'),
    sa.Column('amount', sa.Numeric(precision=16, scale=4), nullable=True, comment='from amount'),
    sa.Column('invoice_fullbay_id', sa.String(length=64), nullable=True, comment='from invoicePrimaryKey'),
    sa.Column('payment_method', sa.Text(), nullable=True, comment='from paymentMethod'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getCustomerPayments.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_customer_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_customer_payments_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_raw_records',
    sa.Column('endpoint', sa.String(length=40), nullable=False, comment='endpoint name, e.g. customer_payments'),
    sa.Column('fullbay_id', sa.String(length=64), nullable=False, comment="the record's key field"),
    sa.Column('record_date', sa.Date(), nullable=False, comment='the day the API returned it for (or its date field)'),
    sa.Column('raw_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, comment='the record exactly as the API returned it'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='sha256 of the canonical JSON'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True, comment="set when the record vanished from its day's answer"),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True, comment='when the API answer holding this copy was received'),
    sa.PrimaryKeyConstraint('endpoint', 'fullbay_id'),
    comment='Records of the date-windowed endpoints other than invoices, as the API sent them.'
    )
    with op.batch_alter_table('fullbay_raw_records', schema=None) as batch_op:
        batch_op.create_index('ix_fullbay_raw_records_endpoint_date', ['endpoint', 'record_date'], unique=False)

    op.create_table('fullbay_vendor_bills',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('bill_number', sa.Text(), nullable=True, comment='from billNumber'),
    sa.Column('vendor_title', sa.Text(), nullable=True, comment='from Vendor.title'),
    sa.Column('amount', sa.Numeric(precision=16, scale=4), nullable=True, comment='from amount'),
    sa.Column('status', sa.Text(), nullable=True, comment='from status'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getVendorBills.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_vendor_bills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_vendor_bills_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_vendor_credits',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('credit_number', sa.Text(), nullable=True, comment='from creditNumber'),
    sa.Column('vendor_title', sa.Text(), nullable=True, comment='from Vendor.title'),
    sa.Column('amount', sa.Numeric(precision=16, scale=4), nullable=True, comment='from amount'),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='of the raw record this row was built from'),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('fullbay_id'),
    comment='getVendorCredits.php: typed columns; every other field is in fullbay_raw_records.raw_data.'
    )
    with op.batch_alter_table('fullbay_vendor_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_vendor_credits_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_counter_sales_lines',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('line_index', sa.Integer(), nullable=False, comment='position in Parts[]'),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('part_number', sa.Text(), nullable=True, comment='from partNumber'),
    sa.Column('description', sa.Text(), nullable=True, comment='from description'),
    sa.Column('quantity', sa.Numeric(precision=16, scale=4), nullable=True, comment='from quantity'),
    sa.Column('price', sa.Numeric(precision=16, scale=4), nullable=True, comment='from price'),
    sa.ForeignKeyConstraint(['fullbay_id'], ['fullbay_counter_sales.fullbay_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fullbay_id', 'line_index'),
    comment='getCounterSales.php: one row per element of Parts[].'
    )
    with op.batch_alter_table('fullbay_counter_sales_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_counter_sales_lines_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_vendor_bills_lines',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('line_index', sa.Integer(), nullable=False, comment='position in Lines[]'),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('part_number', sa.Text(), nullable=True, comment='from partNumber'),
    sa.Column('description', sa.Text(), nullable=True, comment='from description'),
    sa.Column('quantity', sa.Numeric(precision=16, scale=4), nullable=True, comment='from quantity'),
    sa.Column('cost', sa.Numeric(precision=16, scale=4), nullable=True, comment='from cost'),
    sa.ForeignKeyConstraint(['fullbay_id'], ['fullbay_vendor_bills.fullbay_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fullbay_id', 'line_index'),
    comment='getVendorBills.php: one row per element of Lines[].'
    )
    with op.batch_alter_table('fullbay_vendor_bills_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_vendor_bills_lines_record_date'), ['record_date'], unique=False)

    op.create_table('fullbay_vendor_credits_lines',
    sa.Column('fullbay_id', sa.String(length=64), nullable=False),
    sa.Column('line_index', sa.Integer(), nullable=False, comment='position in Lines[]'),
    sa.Column('record_date', sa.Date(), nullable=False),
    sa.Column('part_number', sa.Text(), nullable=True, comment='from partNumber'),
    sa.Column('description', sa.Text(), nullable=True, comment='from description'),
    sa.Column('quantity', sa.Numeric(precision=16, scale=4), nullable=True, comment='from quantity'),
    sa.Column('cost', sa.Numeric(precision=16, scale=4), nullable=True, comment='from cost'),
    sa.ForeignKeyConstraint(['fullbay_id'], ['fullbay_vendor_credits.fullbay_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fullbay_id', 'line_index'),
    comment='getVendorCredits.php: one row per element of Lines[].'
    )
    with op.batch_alter_table('fullbay_vendor_credits_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fullbay_vendor_credits_lines_record_date'), ['record_date'], unique=False)

    with op.batch_alter_table('fullbay_quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('endpoint', sa.String(length=40), server_default='invoices', nullable=False, comment='which endpoint sent it; record_hash of other endpoints includes this name'))
    op.create_table(
        "fullbay_receivables",
        sa.Column(
            "customer_key", sa.String(length=200), nullable=False, comment="customer_id, or name:<title> without one"
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("customer_name", sa.Text(), nullable=True),
        sa.Column("current", sa.Numeric(precision=16, scale=4), nullable=False, comment="open, not yet past due"),
        sa.Column("days_1_30", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("days_31_60", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("days_61_90", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("days_90_plus", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("open_balance", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False, comment="the day the aging is computed for (a daily partition)"),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_key", "as_of"),
        comment="Open balance by customer, aged by days past due (invoices less the payments loaded since).",
    )


def downgrade() -> None:
    op.drop_table("fullbay_receivables")
    
    with op.batch_alter_table('fullbay_quarantine', schema=None) as batch_op:
        batch_op.drop_column('endpoint')

    with op.batch_alter_table('fullbay_vendor_credits_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_vendor_credits_lines_record_date'))

    op.drop_table('fullbay_vendor_credits_lines')
    with op.batch_alter_table('fullbay_vendor_bills_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_vendor_bills_lines_record_date'))

    op.drop_table('fullbay_vendor_bills_lines')
    with op.batch_alter_table('fullbay_counter_sales_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_counter_sales_lines_record_date'))

    op.drop_table('fullbay_counter_sales_lines')
    with op.batch_alter_table('fullbay_vendor_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_vendor_credits_record_date'))

    op.drop_table('fullbay_vendor_credits')
    with op.batch_alter_table('fullbay_vendor_bills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_vendor_bills_record_date'))

    op.drop_table('fullbay_vendor_bills')
    with op.batch_alter_table('fullbay_raw_records', schema=None) as batch_op:
        batch_op.drop_index('ix_fullbay_raw_records_endpoint_date')

    op.drop_table('fullbay_raw_records')
    with op.batch_alter_table('fullbay_customer_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_customer_payments_record_date'))

    op.drop_table('fullbay_customer_payments')
    with op.batch_alter_table('fullbay_customer_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_customer_credits_record_date'))

    op.drop_table('fullbay_customer_credits')
    with op.batch_alter_table('fullbay_counter_sales', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_counter_sales_record_date'))

    op.drop_table('fullbay_counter_sales')
    with op.batch_alter_table('fullbay_adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fullbay_adjustments_record_date'))

    op.drop_table('fullbay_adjustments')
    
