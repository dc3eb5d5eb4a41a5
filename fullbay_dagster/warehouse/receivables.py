"""Receivables: open balance by customer, aged by days past due.

An invoice's ``balance`` is what Fullbay said when the invoice's day was last
fetched; payments that landed since are in ``fullbay_customer_payments``. The open
amount of an invoice is the lower of the two views (its balance, or its total less
the payments loaded for it), so a payment lowers the receivable as soon as the
payments endpoint has loaded it, without re-pulling the invoice's day. A day that
ended before the invoice was fetched (a backfill, and the days each daily run
re-pulls) takes only the payments up to that day: the balance would count later
ones (see ``open_invoices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, delete, exists, func, literal, or_, select

from fullbay_dagster.warehouse.bulk import insert_new
from fullbay_dagster.warehouse.schema import endpoint_tables, fitted, raw_work_orders, receivables, work_orders

_UTC = ZoneInfo("UTC")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
_COLUMNS = dict(zip(BUCKETS, ("current", "days_1_30", "days_31_60", "days_61_90", "days_90_plus"), strict=True))
_KEY = receivables.c.customer_key  # customer_id, or name:<title> cut to fit


@dataclass(frozen=True)
class CustomerReceivable:
    customer_id: str | None
    customer_name: str | None
    buckets: dict[str, Decimal]

    @property
    def open_balance(self) -> Decimal:
        return sum(self.buckets.values(), Decimal(0))


def payments_linked(engine: Engine) -> bool:
    """Whether any loaded payment names its invoice. The payments' fields are a guess
    (Fullbay documents them least: ``invoicePrimaryKey``); if the guess is wrong, no
    payment links, and a past day cannot be told from the payments."""
    payments = endpoint_tables["customer_payments"]
    with engine.connect() as connection:
        return bool(
            connection.execute(
                select(exists().where(payments.c.invoice_fullbay_id.is_not(None), payments.c.deleted_at.is_(None)))
            ).scalar_one()
        )


def open_invoices(as_of: date, zone: ZoneInfo = _UTC, linked: bool = True) -> Any:
    """One row per invoice with something open: customer, open amount, due day.

    An invoice's balance is what Fullbay said when it was fetched. Fetched by the end
    of ``as_of`` (shop time, ``zone``), it holds: the open amount is the balance, or
    the total less the payments loaded up to ``as_of`` where that is lower. Fetched
    later, the balance already counts payments made after ``as_of``: the open amount
    is the total less the payments up to ``as_of``, when payments name their invoices
    (``linked``); else the balance, the best there is. Portable SQL (PostgreSQL and the
    demo's SQLite): no LEAST, no date arithmetic."""
    payments = endpoint_tables["customer_payments"]
    day_ends = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=zone)
    paid = (
        select(payments.c.invoice_fullbay_id.label("fullbay_id"), func.sum(payments.c.amount).label("paid"))
        .where(payments.c.deleted_at.is_(None), payments.c.record_date <= as_of)
        .group_by(payments.c.invoice_fullbay_id)
        .subquery()
    )
    wo, raw = work_orders, raw_work_orders
    unpaid = wo.c.total_amount - func.coalesce(paid.c.paid, 0)
    # A total that did not parse (NULL) leaves the balance as the only figure.
    balance_holds = or_(
        raw.c.fetched_at.is_(None), raw.c.fetched_at < day_ends, wo.c.total_amount.is_(None), literal(not linked)
    )
    open_amount = case(
        (~balance_holds, unpaid),
        (paid.c.paid.is_(None), wo.c.balance),
        (unpaid < wo.c.balance, unpaid),
        else_=wo.c.balance,
    )
    return (
        select(
            wo.c.fullbay_id,
            wo.c.customer_id,
            wo.c.customer_name,
            open_amount.label("open_amount"),
            func.coalesce(wo.c.due_date, wo.c.invoice_date).label("due"),
        )
        .select_from(
            wo.outerjoin(paid, paid.c.fullbay_id == wo.c.fullbay_id).outerjoin(raw, raw.c.fullbay_id == wo.c.fullbay_id)
        )
        .where(wo.c.deleted_at.is_(None), wo.c.invoice_date <= as_of, open_amount > 0)
    )


def bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    return "61-90" if days_past_due <= 90 else "90+"


def compute(engine: Engine, as_of: date, zone: ZoneInfo = _UTC, linked: bool = True) -> list[CustomerReceivable]:
    """Open balance by customer and aging bucket as of ``as_of``, largest first
    (``linked``: see ``payments_linked``)."""
    # By customer id (a name can differ between invoices: renamed, or mistyped by the API).
    by_customer: dict[str, dict[str, Decimal]] = {}
    names: dict[str, tuple[str | None, str | None]] = {}
    with engine.connect() as connection:
        for row in connection.execute(open_invoices(as_of, zone, linked).order_by(work_orders.c.invoice_date.desc())):
            key = row.customer_id or f"name:{row.customer_name or ''}"
            due = row.due if isinstance(row.due, date) else date.fromisoformat(str(row.due))
            buckets = by_customer.setdefault(key, dict.fromkeys(BUCKETS, Decimal(0)))
            buckets[bucket((as_of - due).days)] += Decimal(row.open_amount)
            if names.get(key, (None, None))[1] is None:
                names[key] = (row.customer_id, row.customer_name)  # the newest invoice's name
    rows = [CustomerReceivable(*names[key], buckets) for key, buckets in by_customer.items()]
    return sorted(rows, key=lambda r: (-r.open_balance, r.customer_name or ""))


def store(engine: Engine, as_of: date, rows: list[CustomerReceivable], now: datetime | None = None) -> None:
    """Replace the rows of ``as_of`` in ``fullbay_receivables`` in one transaction."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(delete(receivables).where(receivables.c.as_of == as_of))
        insert_new(
            connection,
            receivables,
            [
                {
                    "customer_key": r.customer_id or fitted(f"name:{r.customer_name or ''}", _KEY),
                    "customer_id": r.customer_id,
                    "customer_name": r.customer_name,
                    **{_COLUMNS[b]: r.buckets[b] for b in BUCKETS},
                    "open_balance": r.open_balance,
                    "as_of": as_of,
                    "computed_at": now,
                }
                for r in rows
            ],
        )


def totals(rows: list[CustomerReceivable]) -> dict[str, Decimal]:
    return {b: sum((r.buckets[b] for r in rows), Decimal(0)) for b in BUCKETS}


def aging_markdown(rows: list[CustomerReceivable], top: int = 10, width: int = 30) -> str:
    """The aging table and a bar chart, as Markdown (what Dagster's UI renders in
    metadata). Hand-written: a plotting library is not a runtime dependency and a
    text chart needs none."""
    total = totals(rows)
    largest = max(total.values(), default=Decimal(0)) or Decimal(1)
    lines = ["| bucket | open | |", "|---|---:|---|"]
    for b in BUCKETS:
        bar = "█" * round(width * total[b] / largest)
        lines.append(f"| {b} | {total[b]:,.2f} | {bar} |")
    lines += ["", "| customer | open | " + " | ".join(BUCKETS) + " |", "|---|---:|" + "---:|" * len(BUCKETS)]
    for r in rows[:top]:
        cells = " | ".join(f"{r.buckets[b]:,.2f}" for b in BUCKETS)
        lines.append(f"| {r.customer_name or r.customer_id} | {r.open_balance:,.2f} | {cells} |")
    return "\n".join(lines)
