"""Synthetic records for the six date-windowed endpoints other than invoices.

Deterministic per (seed, endpoint, day), and consistent with the invoices of
``synthetic``: a customer payment refers to an invoice that exists (not voided)
and is exactly what lowered its balance, so payments of an invoice add up to its
total minus its balance. Field names follow the little public evidence there is
(vendor bills) and are otherwise plausible; the pipeline does not rely on them
beyond each endpoint's key.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fullbay_dagster.fullbay.synthetic import (
    _JOBS,
    _customers,
    _num,
    _q2,
    _qty,
    plan_day,
)

#: The longest a synthetic invoice waits for its last payment (after_days + settle_days).
MAX_PAYMENT_LAG_DAYS = 35
_VENDORS = ("FleetPride", "TruckPro", "Rush Truck Centers", "NAPA Heavy Duty", "Vehicle Service Group")
_PARTS = tuple(part for job in _JOBS for part in job[7])  # (description, number, category, low, high)
_METHODS = ("Check", "ACH", "Credit Card", "Cash")


def _count(per_day: int, divisor: int) -> int:
    return 0 if per_day == 0 else max(1, per_day // divisor)


def _lines(rng: random.Random, kind: str) -> tuple[list[dict[str, Any]], Decimal]:
    lines, total = [], Decimal(0)
    for n in range(rng.randint(1, 4)):
        description, number, _category, low, high = rng.choice(_PARTS)
        quantity = Decimal(rng.randint(1, 6))
        cost = _q2(Decimal(str(rng.uniform(low, high))))
        total += quantity * cost
        price_name = "cost" if kind == "vendor" else "price"
        lines.append(
            {"lineNumber": n + 1, "partNumber": number, "description": description, "quantity": _qty(quantity)}
            | {price_name: _num(cost)}
        )
    return lines, _q2(total)


def customer_payments(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    """The payments made on ``day``: one per payment event of the invoices of the
    previous ``MAX_PAYMENT_LAG_DAYS`` days that still exist as of ``as_of``."""
    out = []
    for back in range(MAX_PAYMENT_LAG_DAYS, -1, -1):
        events = _payment_events(seed, day - timedelta(days=back), per_day, as_of, shops, void_rate).get(day, ())
        for key, n, amount, number, customer_id, title, shop in events:
            rng = random.Random(f"{seed}:payment:{key}:{n}")
            out.append(
                {
                    "primaryKey": f"9{key}{n}",
                    "paymentDate": day.isoformat(),
                    "created": f"{day.isoformat()} {rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00",
                    "amount": _num(amount),
                    "paymentMethod": rng.choice(_METHODS),
                    "referenceNumber": str(rng.randint(1000, 99999)),
                    "invoicePrimaryKey": key,
                    "invoiceNumber": number,
                    "Customer": {"customerId": customer_id, "title": title},
                    "shopTitle": shop,
                }
            )
    return out


@lru_cache(maxsize=2 * (MAX_PAYMENT_LAG_DAYS + 1))
def _payment_events(
    seed: int, invoice_day: date, per_day: int, as_of: date, shops: int, void_rate: float
) -> dict[date, tuple[tuple[Any, ...], ...]]:
    """The payment events of the invoices dated ``invoice_day``, by the day they were
    paid: (invoice key, payment number, amount, invoice number, customer id and title,
    shop). Each day's payments look back over 36 days of invoices, so without this
    every day built 36 days of invoices again (about 2 s a day at 2,000 invoices a day,
    most of a simulated run's time); tuples, so no caller can change what is cached."""
    plan = plan_day(seed, invoice_day, per_day, void_rate=void_rate, shops=shops)
    by_day: dict[date, list[tuple[Any, ...]]] = {}
    for index in plan.indexes(as_of):
        invoice, payments = plan.invoice_and_payments(index, as_of)
        customer = invoice["Customer"]
        for n, (paid_on, amount) in enumerate(payments):
            by_day.setdefault(paid_on, []).append(
                (
                    invoice["primaryKey"],
                    n,
                    amount,
                    invoice["invoiceNumber"],
                    customer["customerId"],
                    customer["title"],
                    invoice["shopTitle"],
                )
            )
    return {paid_on: tuple(events) for paid_on, events in by_day.items()}


def customer_credits(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    rng = random.Random(f"{seed}:customer_credits:{day.isoformat()}")
    customers = _customers(seed)
    out = []
    for n in range(_count(per_day, 6)):
        customer = rng.choice(customers)
        fields = dict(customer.fields)
        out.append(
            {
                "primaryKey": f"8{day.toordinal():07d}{n:05d}",
                "creditDate": day.isoformat(),
                "creditNumber": f"CR-{day.strftime('%y%m%d')}-{n + 1}",
                "amount": _num(_q2(Decimal(str(rng.uniform(10, 400))))),
                "reason": rng.choice(("Warranty", "Goodwill", "Price correction", "Returned part")),
                "Customer": {"customerId": fields["customerId"], "title": customer.title},
            }
        )
    return out


def adjustments(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    rng = random.Random(f"{seed}:adjustments:{day.isoformat()}")
    out = []
    for n in range(_count(per_day, 4)):
        description, number, category, low, high = rng.choice(_PARTS)
        out.append(
            {
                "primaryKey": f"7{day.toordinal():07d}{n:05d}",
                "adjustmentDate": day.isoformat(),
                "partNumber": number,
                "description": description,
                "category": category,
                "quantity": rng.choice((-3, -2, -1, 1, 2, 5, 10)),
                "cost": _num(_q2(Decimal(str(rng.uniform(low, high))))),
                "reason": rng.choice(("Cycle count", "Damaged", "Received", "Returned to vendor")),
            }
        )
    return out


def counter_sales(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    rng = random.Random(f"{seed}:counter_sales:{day.isoformat()}")
    customers = _customers(seed)
    out = []
    for n in range(_count(per_day, 5)):
        customer = rng.choice(customers)
        parts, subtotal = _lines(rng, "customer")
        tax = _q2(subtotal * Decimal("0.0625"))
        out.append(
            {
                "primaryKey": f"6{day.toordinal():07d}{n:05d}",
                "saleDate": day.isoformat(),
                "saleNumber": f"CS-{day.strftime('%y%m%d')}-{n + 1}",
                "Customer": {"customerId": dict(customer.fields)["customerId"], "title": customer.title},
                "subTotal": _num(subtotal),
                "taxTotal": _num(tax),
                "total": _num(subtotal + tax),
                "Parts": parts,
            }
        )
    return out


def _vendor_documents(kind: str, seed: int, day: date, per_day: int) -> list[Any]:
    rng = random.Random(f"{seed}:{kind}:{day.isoformat()}")
    out = []
    for n in range(_count(per_day, 5 if kind == "bill" else 10)):
        vendor = rng.randrange(len(_VENDORS))
        lines, amount = _lines(rng, "vendor")
        number_field, date_field = ("billNumber", "billDate") if kind == "bill" else ("creditNumber", "creditDate")
        out.append(
            {
                "primaryKey": f"{5 if kind == 'bill' else 4}{day.toordinal():07d}{n:05d}",
                number_field: f"{_VENDORS[vendor][:3].upper()}-{rng.randint(10000, 99999)}",
                date_field: day.isoformat(),
                "amount": _num(amount),
                "status": rng.choice(("Open", "Paid", "Exported")) if kind == "bill" else "Applied",
                "Vendor": {"vendorId": 500 + vendor, "title": _VENDORS[vendor]},
                "Lines": lines,
            }
        )
    return out


def vendor_bills(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    return _vendor_documents("bill", seed, day, per_day)


def vendor_credits(seed: int, day: date, per_day: int, as_of: date, shops: int, void_rate: float) -> list[Any]:
    return _vendor_documents("credit", seed, day, per_day)


#: PHP name -> (records of one day, the record's date field in this simulator).
GENERATORS: dict[str, tuple[Callable[[int, date, int, date, int, float], list[Any]], str]] = {
    "getCustomerPayments.php": (customer_payments, "paymentDate"),
    "getCustomerCredits.php": (customer_credits, "creditDate"),
    "getAdjustments.php": (adjustments, "adjustmentDate"),
    "getCounterSales.php": (counter_sales, "saleDate"),
    "getVendorBills.php": (vendor_bills, "billDate"),
    "getVendorCredits.php": (vendor_credits, "creditDate"),
}
