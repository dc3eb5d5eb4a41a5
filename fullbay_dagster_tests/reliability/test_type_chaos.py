"""Type chaos (hypothesis, on PostgreSQL): every non-identity field, at any depth,
may arrive with another JSON type (the simulator's ``type_chaos`` mode).

Properties: every invoice with a usable key and date is in ``fullbay_work_orders``;
every value that parses lands exactly; every value that does not is NULL and has
exactly one ``fullbay_field_issues`` row at its path; a rerun changes nothing; the
quarantine holds identity failures only. The expectations come from an oracle
written here from the contract, independently of ``records.py``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Text, cast, select, text

from fullbay_dagster.fullbay.synthetic import invoices_for_day, with_type_chaos
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.schema import field_issues, quarantine, raw_work_orders, work_order_lines, work_orders
from fullbay_dagster_tests.reliability import harness
from fullbay_dagster_tests.reliability.harness import DAY
from fullbay_dagster_tests.reliability.test_bad_input import norm

ZONE = ZoneInfo("America/Chicago")
NOW = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
POOL = invoices_for_day(harness.SEED, DAY, 30, harness.AS_OF)
Missing = object()


# --------------------------------------------------------------------------- the oracle


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def number(value: Any) -> Any:
    """Decimal, None (blank) or Missing (does not fit NUMERIC(16, 4))."""
    if is_blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Missing
    try:
        parsed = Decimal(
            repr(value)
            if isinstance(value, float)
            else value.strip().replace(",", "")
            if isinstance(value, str)
            else value
        )
    except ArithmeticError:
        return Missing
    if not parsed.is_finite() or abs(parsed) >= 10**12 or parsed.as_tuple().exponent < -4:  # type: ignore[operator]
        return Missing
    return parsed


def amount(value: Any) -> Any:
    return Decimal(0) if is_blank(value) else number(value)


def flag(value: Any) -> Any:
    if is_blank(value):
        return None
    word = str(value).strip().lower()
    return True if word in ("yes", "y", "1", "true") else False if word in ("no", "n", "0", "false") else Missing


def stamp(value: Any) -> Any:
    if is_blank(value):
        return None
    if not isinstance(value, str):
        return Missing
    if value.strip().startswith("0000-00-00"):
        return None
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return Missing
    return parsed.replace(tzinfo=ZONE)


def day(value: Any) -> Any:
    if is_blank(value):
        return None
    if not isinstance(value, str):
        return Missing
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return Missing


def words(value: Any, limit: int | None = None) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return Missing
    result = value.strip() if isinstance(value, str) else str(value)
    if limit is not None and len(result) > limit:
        return Missing
    return result or None


def ident(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return Missing
    return words(value, 64)


class Oracle:
    """What the contract says one invoice becomes: column values and issue paths."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.issues: set[str] = set()
        self.columns: dict[str, Any] = {}
        self.lines: list[tuple[str, Any, Any]] = []  # (line_type, quantity, amount)
        self._invoice(record)

    def take(self, parse: Callable[[Any], Any], value: Any, path: str) -> Any:
        result = parse(value)
        if result is Missing:
            self.issues.add(path)
            return None
        return result

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if not is_blank(value):
            self.issues.add(path)
        return {}

    def items(self, value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(value, list):
            if not is_blank(value):
                self.issues.add(path)
            return
        for n, item in enumerate(value):
            if isinstance(item, dict):
                yield f"{path}[{n}]", item
            else:
                self.issues.add(f"{path}[{n}]")

    def _invoice(self, r: dict[str, Any]) -> None:
        order = self.obj(r.get("ServiceOrder"), "ServiceOrder")
        if not is_blank(r.get("Customer")):
            customer, where = self.obj(r.get("Customer"), "Customer"), "Customer"
        else:
            customer, where = self.obj(order.get("Customer"), "ServiceOrder.Customer"), "ServiceOrder.Customer"
        self.obj(order.get("Unit"), "ServiceOrder.Unit")
        c = self.columns
        for field, column in (("total", "total_amount"), ("balance", "balance")):
            c[column] = self.take(number, r.get(field), field)
        if is_blank(r.get("taxTotal")):
            tax = self.obj(r.get("TaxInformation"), "TaxInformation")
            c["tax_amount"] = self.take(number, tax.get("taxTotal"), "TaxInformation.taxTotal")
        else:
            c["tax_amount"] = self.take(number, r.get("taxTotal"), "taxTotal")
        c["work_order_number"] = self.take(
            lambda v: words(v, 64), order.get("repairOrderNumber"), "ServiceOrder.repairOrderNumber"
        )
        c["invoice_number"] = self.take(lambda v: words(v, 64), r.get("invoiceNumber"), "invoiceNumber")
        c["due_date"] = self.take(day, r.get("dueDate"), "dueDate")
        c["service_order_id"] = self.take(ident, order.get("primaryKey"), "ServiceOrder.primaryKey")
        c["customer_id"] = self.take(ident, customer.get("customerId"), f"{where}.customerId")
        c["customer_name"] = self.take(words, customer.get("title"), f"{where}.title") or self.take(
            words, r.get("customerTitle"), "customerTitle"
        )
        c["shop_title"] = self.take(words, r.get("shopTitle"), "shopTitle")
        c["created_at"] = self.take(stamp, r.get("created"), "created")
        for field, column in (
            ("laborTotal", "labor_amount"), ("partsTotal", "parts_amount"), ("suppliesTotal", "supplies_amount"),
            ("miscChargeTotal", "misc_amount"), ("subTotal", "subtotal_amount"), ("laborHoursTotal", "labor_hours"),
        ):  # fmt: skip
            c[column] = self.take(number, r.get(field), field)
        c["exported"] = self.take(flag, r.get("exported"), "exported")
        for field, column in (
            ("created", "so_created_at"),
            ("startDateTime", "so_started_at"),
            ("completionDateTime", "so_completed_at"),
        ):
            c[column] = self.take(stamp, order.get(field), f"ServiceOrder.{field}")
        self._lines(order)

    def _key(self, taken: set[str], value: Any, path: str) -> None:
        key = self.take(ident, value, f"{path}.primaryKey")
        if key is not None and key in taken:
            self.issues.add(f"{path}.primaryKey")  # a second line with the same key
        elif key is not None:
            taken.add(key)

    def _lines(self, order: dict[str, Any]) -> None:
        labor_keys: set[str] = set()
        part_keys: set[str] = set()
        for where, complaint in self.items(order.get("Complaints"), "ServiceOrder.Complaints"):
            self.take(ident, complaint.get("primaryKey"), f"{where}.primaryKey")
            for tp, tech in self.items(complaint.get("AssignedTechnicians"), f"{where}.AssignedTechnicians"):
                self.take(words, tech.get("technician"), f"{tp}.technician")
            for at, corr in self.items(complaint.get("Corrections"), f"{where}.Corrections"):
                self._key(labor_keys, corr.get("primaryKey"), at)
                self.take(words, corr.get("actualCorrection"), f"{at}.actualCorrection") or self.take(
                    words, corr.get("title"), f"{at}.title"
                )
                self.take(words, corr.get("globalComponent"), f"{at}.globalComponent")
                hours = self.take(number, corr.get("laborHoursTotal"), f"{at}.laborHoursTotal")
                self.take(words, corr.get("laborRate"), f"{at}.laborRate")
                labor = self.take(amount, corr.get("laborTotal"), f"{at}.laborTotal")
                self.take(flag, corr.get("taxable"), f"{at}.taxable")
                self.take(stamp, corr.get("created"), f"{at}.created")
                self.lines.append(("labor", hours, labor))
                for pt, part in self.items(corr.get("Parts"), f"{at}.Parts"):
                    quantity = self.take(amount, part.get("quantity"), f"{pt}.quantity")
                    price = self.take(amount, part.get("sellingPrice"), f"{pt}.sellingPrice")
                    self._key(part_keys, part.get("primaryKey"), pt)
                    self.take(words, part.get("description"), f"{pt}.description")
                    self.take(words, part.get("shopPartNumber"), f"{pt}.shopPartNumber")
                    self.take(number, part.get("cost"), f"{pt}.cost")
                    total = None
                    if quantity is not None and price is not None:
                        total = (quantity * price).quantize(Decimal("0.01"), ROUND_HALF_UP)
                        if abs(total) >= 10**12:
                            self.issues.add(f"{pt}.quantity*sellingPrice")
                            total = None
                    self.take(flag, part.get("taxable"), f"{pt}.taxable")
                    self.take(stamp, part.get("created"), f"{pt}.created")
                    self.lines.append(("part", quantity, total))
        misc_keys: set[str] = set()
        for mt, charge in self.items(order.get("MiscCharges"), "ServiceOrder.MiscCharges"):
            self._key(misc_keys, charge.get("primaryKey"), mt)
            self.take(words, charge.get("description"), f"{mt}.description")
            raw_quantity = charge.get("quantity")
            quantity = Decimal(1) if is_blank(raw_quantity) else self.take(number, raw_quantity, f"{mt}.quantity")
            self.take(number, charge.get("rate"), f"{mt}.rate")
            total = self.take(amount, charge.get("amount"), f"{mt}.amount")
            self.take(flag, charge.get("taxable"), f"{mt}.taxable")
            self.lines.append(("misc", quantity, total))


# --------------------------------------------------------------------------- the property


@pytest.fixture(scope="module")
def chaos_engine() -> Iterator[Engine]:
    with harness.temp_database("chaos") as url:
        engine = harness.migrated_engine(url)
        yield engine
        engine.dispose()


def empty(engine: Engine) -> None:
    tables = "fullbay_work_order_lines, fullbay_work_orders, fullbay_raw_work_orders, fullbay_quarantine"
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables}, fullbay_field_issues, fullbay_schema_fields"))


def load(engine: Engine, records: list[Any], run_id: str) -> None:
    loader.load_raw_day(engine, DAY, records, run_id=run_id, now=NOW)
    loader.build_work_orders_day(engine, DAY, zone=ZONE, source="chaos", now=NOW, run_id=run_id)


def normal(value: Any) -> Any:
    return value.normalize() if isinstance(value, Decimal) else value


@settings(
    max_examples=int(os.environ.get("FULLBAY_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    picks=st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=5, unique=True),
    rate=st.sampled_from([0.02, 0.1, 0.3, 0.6]),
    seed=st.integers(0, 2**32),
    broken=st.lists(st.sampled_from(["no-key", "bad-date", "other-day", "not-object"]), max_size=2),
)
def test_type_chaos_loads_every_placeable_invoice_exactly(
    chaos_engine: Engine, picks: list[int], rate: float, seed: int, broken: list[str]
) -> None:
    empty(chaos_engine)
    records: list[Any] = [with_type_chaos(copy.deepcopy(POOL[i]), rate, seed) for i in picks]
    unplaceable: list[Any] = []
    for n, kind in enumerate(broken):
        victim = copy.deepcopy(POOL[(picks[0] + n + 1) % len(POOL)])
        if victim["primaryKey"] in {r["primaryKey"] for r in records}:
            continue
        bad = {
            "no-key": {**victim, "primaryKey": None},
            "bad-date": {**victim, "invoiceDate": "soon"},
            "other-day": {**victim, "invoiceDate": "2025-03-13"},
            "not-object": [victim],
        }[kind]
        unplaceable.append(bad)
    load(chaos_engine, [*records, *unplaceable], "run-1")

    with chaos_engine.connect() as connection:
        rows = {row.fullbay_id: row for row in connection.execute(select(work_orders))}
        lines = connection.execute(select(work_order_lines)).all()
        issues = connection.execute(select(field_issues.c.fullbay_id, field_issues.c.field_path)).all()
        held = connection.execute(select(quarantine)).all()
        # What the normaliser reads: the raw JSON as PostgreSQL keeps it (JSONB writes 1e300 out in full).
        stored = {
            key: json.loads(raw)
            for key, raw in connection.execute(
                select(raw_work_orders.c.fullbay_id, cast(raw_work_orders.c.raw_data, Text))
            )
        }
    # Every placeable invoice is loaded; the quarantine holds the unplaceable ones only.
    assert set(rows) == {r["primaryKey"] for r in records}
    assert len(held) == len(unplaceable)
    # Exactly one issue per value that did not fit, none for values that did.
    for record in records:
        key = record["primaryKey"]
        assert norm(stored[key]) == norm(record)  # the raw table keeps the value as sent
        oracle = Oracle(stored[key])
        found = [path for fid, path in issues if fid == key]
        assert sorted(found) == sorted(oracle.issues), key
        row = rows[key]
        for column, expected in oracle.columns.items():
            actual = row._mapping[column]
            if isinstance(expected, datetime) and actual is not None:
                assert actual == expected, (key, column)
            else:
                assert normal(actual) == normal(expected), (key, column, actual, expected)
        got = sorted(
            repr((line.line_type, normal(line.quantity), normal(line.amount)))
            for line in lines
            if line.fullbay_id == key
        )
        assert got == sorted(repr((kind, normal(q), normal(a))) for kind, q, a in oracle.lines), key
    # A rerun of the same answer changes nothing.
    before = {t.name: loader.table_checksum(chaos_engine, t) for t in (work_orders, work_order_lines, field_issues)}
    load(chaos_engine, [*records, *unplaceable], "run-2")
    after = {t.name: loader.table_checksum(chaos_engine, t) for t in (work_orders, work_order_lines, field_issues)}
    assert after == before


def test_type_chaos_is_reproducible_per_seed_and_keeps_identity() -> None:
    record = POOL[0]
    assert with_type_chaos(record, 0.3, 7) == with_type_chaos(record, 0.3, 7)
    assert with_type_chaos(record, 0.3, 7) != with_type_chaos(record, 0.3, 8)
    changed = with_type_chaos(record, 1.0, 1)
    assert (changed["primaryKey"], changed["invoiceDate"]) == (record["primaryKey"], record["invoiceDate"])
    assert all(changed[k] != record[k] or k in ("primaryKey", "invoiceDate") for k in record if record[k] is not None)
