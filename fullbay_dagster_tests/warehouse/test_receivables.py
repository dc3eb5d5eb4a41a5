"""Receivables from invoices and payments loaded from the simulator into PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, func, select, update

from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.endpoints import CUSTOMER_PAYMENTS, INVOICES
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.windows import date_windows
from fullbay_dagster.warehouse import receivables
from fullbay_dagster.warehouse.endpoint_sync import sync_endpoint
from fullbay_dagster.warehouse.schema import endpoint_tables
from fullbay_dagster_tests.conftest import TEST_KEY

T1 = date(2026, 3, 31)
T0 = T1 - timedelta(days=10)
FIRST = T0 - timedelta(days=44)


def _client(simulator: Simulator) -> FullbayClient:
    config = FullbayClientConfig(api_key=TEST_KEY, base_url=simulator.url, public_ip="127.0.0.1", min_interval=0)
    return FullbayClient(config)


def test_payments_loaded_later_lower_the_receivable_and_aging_matches(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    client = _client(simulator)
    # invoices as Fullbay showed them ten days ago; payments up to today
    simulator.configure(as_of=T0, page_size=200)
    sync_endpoint(pg_engine, client, INVOICES, FIRST, T0, tmp_path)
    simulator.configure(as_of=T1)
    sync_endpoint(pg_engine, client, CUSTOMER_PAYMENTS, FIRST, T1, tmp_path)

    rows = receivables.compute(pg_engine, T1)

    # Expected, independently: today's balances straight from the API, aged by dueDate.
    expected: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(receivables.BUCKETS, Decimal(0)))
    stale_total = Decimal(0)
    for first, last in date_windows(FIRST, T0):
        for page in client.iter_window_pages(first, last):
            for invoice in page.records:
                balance = Decimal(str(invoice["balance"]))
                if balance > 0:
                    due = date.fromisoformat(str(invoice.get("dueDate") or invoice["invoiceDate"])[:10])
                    expected[str(invoice["Customer"]["customerId"])][receivables.bucket((T1 - due).days)] += balance
    with pg_engine.connect() as connection:
        stale_total = Decimal(
            connection.execute(
                select(func.sum(receivables.work_orders.c.balance)).where(receivables.work_orders.c.balance > 0)
            ).scalar_one()
        )
    got = {str(r.customer_id): r.buckets for r in rows}
    assert got == {k: v for k, v in expected.items()}
    total = sum((r.open_balance for r in rows), Decimal(0))
    assert 0 < total < stale_total, "payments made since the invoices were fetched lower the receivable"
    assert sum(1 for r in rows for b in receivables.BUCKETS if r.buckets[b]) > len(rows)

    receivables.store(pg_engine, T1, rows)
    with pg_engine.connect() as connection:
        stored = connection.execute(select(func.sum(receivables.receivables.c.open_balance))).scalar_one()
    assert Decimal(stored) == total
    chart = receivables.aging_markdown(rows)
    assert all(f"| {b} |" in chart for b in receivables.BUCKETS)
    assert "█" in chart


def test_one_row_per_customer_when_names_vary(pg_engine: Engine, simulator: Simulator, tmp_path: Path) -> None:
    # Type chaos turns some customer names into numbers: the customer is still one row.
    simulator.configure(as_of=T1, page_size=200, type_chaos=0.3)
    sync_endpoint(pg_engine, _client(simulator), INVOICES, T1 - timedelta(days=13), T1, tmp_path)
    wo = receivables.work_orders
    with pg_engine.connect() as connection:
        names = connection.execute(
            select(wo.c.customer_id, func.count(func.distinct(wo.c.customer_name)))
            .where(wo.c.balance > 0, wo.c.customer_id.is_not(None))
            .group_by(wo.c.customer_id)
        ).all()
    assert any(n > 1 for _, n in names), "the chaos should give some customer two names"
    today = date.today()  # the invoices were fetched today: their balances hold (no payments loaded here)
    rows = receivables.compute(pg_engine, today)
    assert sorted(str(r.customer_id) for r in rows if r.customer_id) == sorted(str(c) for c, _ in names)
    receivables.store(pg_engine, today, rows)
    receivables.store(pg_engine, today, rows)  # a rerun replaces the day's rows
    with pg_engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(receivables.receivables)).scalar_one()
    assert stored == len(rows)


def _api_balances(client: FullbayClient, last: date) -> dict[str, Decimal]:
    """Open balance by customer as the API shows it now, for invoices dated up to ``last``."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for first, end in date_windows(FIRST, last):
        for page in client.iter_window_pages(first, end):
            for invoice in page.records:
                if Decimal(str(invoice["balance"])) > 0:
                    totals[str(invoice["Customer"]["customerId"])] += Decimal(str(invoice["balance"]))
    return dict(totals)


def test_a_day_before_the_invoices_were_fetched_counts_only_the_payments_made_by_then(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    """A backfill's past day: the fetched balance already counts later payments. The
    oracle is the API itself, asked as of that day."""
    client = _client(simulator)
    simulator.configure(as_of=T1, page_size=200)
    sync_endpoint(pg_engine, client, INVOICES, FIRST, T1, tmp_path)
    sync_endpoint(pg_engine, client, CUSTOMER_PAYMENTS, FIRST, T1, tmp_path)
    simulator.configure(as_of=T0)
    then = _api_balances(client, T0)
    got = {str(r.customer_id): r.open_balance for r in receivables.compute(pg_engine, T0)}
    assert got == then
    # Fetched by the end of the day asked about (today here), the balance holds.
    simulator.configure(as_of=T1)
    today = {str(r.customer_id): r.open_balance for r in receivables.compute(pg_engine, date.today())}
    assert today == _api_balances(client, T1)
    # What the fetched balances alone said of the same invoices: payments made after T0 counted.
    fetched = _api_balances(client, T0)
    assert sum(then.values()) > sum(fetched.values())
    # A total that did not parse leaves the fetched balance as the only figure, not nothing.
    wo = receivables.work_orders
    with pg_engine.begin() as connection:
        victim, balance = connection.execute(
            select(wo.c.fullbay_id, wo.c.balance).where(wo.c.balance > 0, wo.c.invoice_date <= T0).limit(1)
        ).one()
        connection.execute(update(wo).where(wo.c.fullbay_id == victim).values(total_amount=None))
        opened = dict(
            connection.execute(select(receivables.open_invoices(T0).subquery().c["fullbay_id", "open_amount"])).all()
        )
    assert opened[victim] == balance
    # Payments that name no invoice (Fullbay's field not the guessed one) cannot date a
    # past day: the fetched balances are the best there is, not totals counted unpaid.
    assert receivables.payments_linked(pg_engine)
    with pg_engine.begin() as connection:
        connection.execute(update(endpoint_tables["customer_payments"]).values(invoice_fullbay_id=None))
    assert not receivables.payments_linked(pg_engine)
    unlinked = receivables.compute(pg_engine, T0, linked=False)
    assert {str(r.customer_id): r.open_balance for r in unlinked} == fetched
