"""Turning one Fullbay invoice into a work-order row and its line rows.

Fullbay's types wander (ids as strings or ints, money as numbers or strings,
"" or null for empty, "Yes"/"No" flags, timestamps without a zone); every value
goes through one of the parsers below so the warehouse gets exact types.

Identity is strict, content tolerant: an invoice is refused (quarantined) only
when it cannot be placed (not an object, no usable ``primaryKey`` or
``invoiceDate``). Any other field that does not fit its column is stored NULL and
reported as a :class:`FieldIssue`; the raw JSON keeps the original value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fullbay_dagster.fullbay import jsonio

CENT = Decimal("0.01")
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash + "u0000"
# What the warehouse columns hold: NUMERIC(16, 4) and VARCHAR(64) keys.
MAX_AMOUNT = Decimal(10) ** 12
MAX_DECIMALS = 4
MAX_KEY_LENGTH = 64


class RecordError(ValueError):
    """The record cannot be loaded as it is (the reason names the field)."""


def canonical_json(record: dict[str, Any]) -> str:
    # json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
    # through orjson where that gives the same text (see jsonio): ~4x faster.
    return jsonio.canonical_json(record)


def content_hash(record: dict[str, Any]) -> str:
    """Stable across key order, so a re-pulled unchanged invoice hashes the same."""
    return text_hash(canonical_json(record))


def blank(value: Any) -> bool:
    return value is None or (type(value) is str and not value.strip())


def text(value: Any) -> str | None:
    # Exact-type fast path: called for every text field of every line.
    stripped = (value if type(value) is str else "" if value is None else str(value)).strip()
    return stripped or None


def ident(value: Any, name: str) -> str | None:
    """Ids arrive as strings or ints; store them as text so both compare equal."""
    if value is None:
        return None
    kind = type(value)
    if kind is not str and kind is not int and (kind is bool or not isinstance(value, (str, int))):
        raise RecordError(f"{name} must be a string or an integer, got {kind.__name__}")
    return short(value, name)


def short(value: Any, name: str) -> str | None:
    """Keys and numbers stored in VARCHAR(64) columns."""
    result = text(value)
    if result is not None and len(result) > MAX_KEY_LENGTH:
        raise RecordError(f"{name} is longer than {MAX_KEY_LENGTH} characters")
    return result


# Amounts repeat: a day's 72,000 amounts hold about 22,000 distinct values. Those
# parsed are kept, by exact type (as keys 1 == 1.0), never a zero (0.0 == -0.0, whose
# Decimals differ) and never one refused (its error names the field).
_PARSED: dict[type, dict[Any, Decimal]] = {float: {}, str: {}}
_PARSED_MAX = 25_000  # per type: a few MiB


def decimal(value: Any, name: str) -> Decimal | None:
    cache = _PARSED.get(type(value))
    if cache is None or not value:
        return _decimal(value, name)
    number = cache.get(value)
    if number is None:
        number = _decimal(value, name)
        if number is not None:
            if len(cache) >= _PARSED_MAX:
                cache.clear()
            cache[value] = number
    return number


def _decimal(value: Any, name: str) -> Decimal | None:
    kind = type(value)  # exact-type dispatch: this runs for every amount of every line
    if value is None:
        return None
    places_known = True  # the text shows at most MAX_DECIMALS places (an int has none)
    if kind is int:
        number = Decimal(value)
    elif kind is float:
        digits = repr(value)  # not Decimal(value): that would keep the binary error of 0.1
        number = Decimal(digits)
        places_known = _few_places(digits)
    elif kind is str:
        stripped = value.strip()
        if not stripped:
            return None
        digits = stripped.replace(",", "")
        try:
            number = Decimal(digits)
        except InvalidOperation:
            raise RecordError(f"{name} is not a number: {value[:40]!r}") from None
        places_known = _few_places(digits)
    else:
        raise RecordError(f"{name} is a {kind.__name__}, not a number")
    if not number.is_finite():
        raise RecordError(f"{name} is not a finite number: {value!r}")
    if abs(number) >= MAX_AMOUNT:
        raise RecordError(f"{name} is out of range (|value| >= 10^12): {str(value)[:40]}")
    if not places_known and number.as_tuple().exponent < -MAX_DECIMALS:  # type: ignore[operator]
        # NUMERIC(16, 4) would round it silently; a record is loaded exactly or not at all.
        raise RecordError(f"{name} has more than {MAX_DECIMALS} decimal places: {str(value)[:40]}")
    return number


def _few_places(digits: str) -> bool:
    """True when the text Decimal just parsed plainly has at most MAX_DECIMALS places:
    no exponent or underscore, few digits after the point. Otherwise the caller asks
    ``Decimal.as_tuple`` (exact, but the costliest step of parsing an amount)."""
    if "e" in digits or "E" in digits or "_" in digits:
        return False
    point = digits.find(".")
    return point < 0 or len(digits) - point - 1 <= MAX_DECIMALS


def flag(value: Any, name: str) -> bool | None:
    if blank(value):
        return None
    normalised = str(value).strip().lower()
    if normalised in ("yes", "y", "1", "true"):
        return True
    if normalised in ("no", "n", "0", "false"):
        return False
    raise RecordError(f"{name} is not a Yes/No flag: {str(value)[:20]!r}")


def parse_date(value: Any, name: str) -> date | None:
    if blank(value):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise RecordError(f"{name} is not a YYYY-MM-DD date: {str(value)[:30]!r}") from None


def parse_timestamp(value: Any, name: str, zone: ZoneInfo) -> datetime | None:
    """Fullbay timestamps carry no zone; they are the shop's local time."""
    if type(value) is str:  # the usual case, without blank()'s second strip
        raw = value.strip()
        if not raw:
            return None
    elif blank(value):
        return None
    else:
        raw = str(value).strip()
    if raw.startswith("0000-00-00"):
        return None
    try:
        # fromisoformat is C and ~10x faster than strptime; the shape check keeps it strict.
        if len(raw) != 19 or raw[10] != " ":
            raise ValueError
        parsed = datetime.fromisoformat(raw).replace(tzinfo=zone)
        if raw.startswith(("0001", "9999")):
            # Stored as UTC: 9999-12-31 23:00 west of Greenwich does not fit (nor year 1
            # east of it); no other year can leave datetime's range.
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RecordError(f"{name} is not a storable 'YYYY-MM-DD HH:MM:SS' timestamp: {raw[:30]!r}") from None
    return parsed


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (what schema observation records)."""
    return _JSON_TYPES.get(type(value)) or ("object" if isinstance(value, dict) else "array")


_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
OBSERVED_MAX = 200  # characters of an unparseable value kept in fullbay_field_issues


@dataclass(frozen=True)
class FieldIssue:
    """A field that did not parse into its column's type: stored NULL, noted here."""

    path: str  # with array positions: ServiceOrder.Complaints[0].Corrections[1].laborTotal
    expected: str
    observed: str  # the value as JSON text, truncated


def _observed(value: Any) -> str:
    try:
        dumped = json.dumps(value, ensure_ascii=False, allow_nan=True, default=repr)
    except (TypeError, ValueError):  # pragma: no cover - default=repr makes this unreachable
        dumped = repr(value)
    return dumped.replace("\x00", "\\0")[:OBSERVED_MAX]


# What each typed column accepts, as shown in fullbay_field_issues.expected_type.
NUMBER = f"number (at most {MAX_DECIMALS} decimals, |x| < 10^12)"
FLAG = "Yes/No flag"
DATE = "date YYYY-MM-DD"
TIMESTAMP = "timestamp 'YYYY-MM-DD HH:MM:SS'"
ID = f"id (string or integer, at most {MAX_KEY_LENGTH} characters)"
SHORT = f"text of at most {MAX_KEY_LENGTH} characters"
TEXT = "text (string or number)"
OBJECT = "object"
LIST = "list of objects"
UNIQUE = "an id unique among its siblings"


class Fields:
    """Best-effort parsing of one invoice's content: a value that does not fit its
    column becomes None and a :class:`FieldIssue`. Identity (key, date) is not
    parsed here: it stays strict (see :func:`check_record`)."""

    __slots__ = ("issues", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.issues: list[FieldIssue] = []

    def note(self, path: str, expected: str, value: Any) -> None:
        self.issues.append(FieldIssue(path, expected, _observed(value)))

    # The ``value is None`` tests up front are the fast path: most fields parse.
    def num(self, value: Any, path: str) -> Decimal | None:
        if value is None:
            return None
        try:
            return decimal(value, path)
        except RecordError:
            self.note(path, NUMBER, value)
            return None

    def flag(self, value: Any, path: str) -> bool | None:
        try:
            return flag(value, path)
        except RecordError:
            self.note(path, FLAG, value)
            return None

    def day(self, value: Any, path: str) -> date | None:
        if value is None:
            return None
        try:
            if type(value) is not str:
                raise RecordError(path)
            return parse_date(value, path)
        except RecordError:
            self.note(path, DATE, value)
            return None

    def stamp(self, value: Any, path: str) -> datetime | None:
        if value is None:
            return None
        try:
            if type(value) is not str:
                raise RecordError(path)
            return parse_timestamp(value, path, self.zone)
        except RecordError:
            self.note(path, TIMESTAMP, value)
            return None

    def ident(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        try:
            return ident(value, path)
        except RecordError:
            self.note(path, ID, value)
            return None

    def short(self, value: Any, path: str) -> str | None:
        result = self.text(value, path, SHORT)
        if result is not None and len(result) > MAX_KEY_LENGTH:
            self.note(path, SHORT, value)
            return None
        return result

    def text(self, value: Any, path: str, expected: str = TEXT) -> str | None:
        kind = type(value)
        if kind is str:
            return value.strip() or None
        if value is None:
            return None
        if kind is int or kind is float:
            return str(value)
        self.note(path, expected, value)
        return None

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if type(value) is dict:
            return value
        if not blank(value):
            self.note(path, OBJECT, value)
        return {}

    def items(self, value: Any, path: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(position, path, element) of each object in a list; anything else is an issue."""
        if type(value) is not list:
            if not blank(value):
                self.note(path, LIST, value)
            return
        for index, item in enumerate(value):
            at = f"{path}[{index}]"
            if type(item) is dict:
                yield index, at, item
            else:
                self.note(at, OBJECT, item)


def status_from_balance(balance: Decimal | None, total: Decimal | None) -> str:
    """Fullbay has no status field; paid/open follows from the balance."""
    if balance is None:
        return "unknown"
    if balance == 0:
        return "paid"
    if balance < 0:
        return "credit"
    if total is not None and balance < total:
        return "partially_paid"
    return "open"


def invoice_key(record: dict[str, Any]) -> str:
    key = ident(record.get("primaryKey"), "primaryKey")
    if key is None:
        raise RecordError("primaryKey is missing")
    return key


def invoice_day(record: dict[str, Any]) -> date:
    day = parse_date(record.get("invoiceDate"), "invoiceDate")
    if day is None:
        raise RecordError("invoiceDate is missing")
    return day


@dataclass(frozen=True)
class NormalisedInvoice:
    work_order: dict[str, Any]
    lines: list[dict[str, Any]]
    issues: list[FieldIssue] = field(default_factory=list)


def normalise_invoice(record: dict[str, Any], zone: ZoneInfo) -> NormalisedInvoice:
    """The work-order row (without bookkeeping columns), its part, labor and misc
    lines, and the fields that did not parse. Raises RecordError only when the
    invoice cannot be placed (not an object, no usable key or date)."""
    if not isinstance(record, dict):
        raise RecordError(f"an invoice must be a JSON object, got {type(record).__name__}")
    fullbay_id = invoice_key(record)
    day = invoice_day(record)
    f = Fields(zone)
    order = f.obj(record.get("ServiceOrder"), "ServiceOrder")
    if not blank(record.get("Customer")):
        customer, customer_path = f.obj(record.get("Customer"), "Customer"), "Customer"
    else:
        customer_path = "ServiceOrder.Customer"
        customer = f.obj(order.get("Customer"), customer_path)
    unit = f.obj(order.get("Unit"), "ServiceOrder.Unit")
    get = record.get
    total, balance = f.num(get("total"), "total"), f.num(get("balance"), "balance")
    if blank(get("taxTotal")):
        tax = f.obj(get("TaxInformation"), "TaxInformation")
        tax_amount = f.num(tax.get("taxTotal"), "TaxInformation.taxTotal")
    else:
        tax_amount = f.num(get("taxTotal"), "taxTotal")
    work_order = {
        "fullbay_id": fullbay_id,
        "work_order_number": f.short(order.get("repairOrderNumber"), "ServiceOrder.repairOrderNumber"),
        "invoice_number": f.short(get("invoiceNumber"), "invoiceNumber"),
        "invoice_date": day,
        "due_date": f.day(get("dueDate"), "dueDate"),
        "service_order_id": f.ident(order.get("primaryKey"), "ServiceOrder.primaryKey"),
        "customer_id": f.ident(customer.get("customerId"), f"{customer_path}.customerId"),
        "customer_name": f.text(customer.get("title"), f"{customer_path}.title")
        or f.text(get("customerTitle"), "customerTitle"),
        "shop_title": f.text(get("shopTitle"), "shopTitle"),
        "vehicle_info": {k: unit.get(k) for k in sorted(unit)} or None,
        "status": status_from_balance(balance, total),
        "created_at": f.stamp(get("created"), "created"),
        "total_amount": total,
        "labor_amount": f.num(get("laborTotal"), "laborTotal"),
        "parts_amount": f.num(get("partsTotal"), "partsTotal"),
        "tax_amount": tax_amount,
        "supplies_amount": f.num(get("suppliesTotal"), "suppliesTotal"),
        "misc_amount": f.num(get("miscChargeTotal"), "miscChargeTotal"),
        "subtotal_amount": f.num(get("subTotal"), "subTotal"),
        "balance": balance,
        "labor_hours": f.num(get("laborHoursTotal"), "laborHoursTotal"),
        "exported": f.flag(get("exported"), "exported"),
        "so_created_at": f.stamp(order.get("created"), "ServiceOrder.created"),
        "so_started_at": f.stamp(order.get("startDateTime"), "ServiceOrder.startDateTime"),
        "so_completed_at": f.stamp(order.get("completionDateTime"), "ServiceOrder.completionDateTime"),
    }
    lines = _lines(fullbay_id, order, f)
    return NormalisedInvoice(work_order, lines, f.issues)


def _derived_key(parent: str, index: int) -> str:
    """A stable key for a line Fullbay gave none: its parent's key and its position,
    hashed when that would not fit the column."""
    key = f"{parent}#{index}"
    return key if len(key) <= MAX_KEY_LENGTH else hashlib.sha256(key.encode()).hexdigest()


def _amount(f: Fields, value: Any, path: str) -> Decimal | None:
    """A line amount: blank means zero; a value that does not parse is NULL (and noted)."""
    if blank(value):
        return Decimal(0)
    return f.num(value, path)


def _lines(fullbay_id: str, order: dict[str, Any], f: Fields) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def key_of(kind: str, value: Any, path: str, parent: str, index: int) -> str:
        """Fullbay's key of the line; its parent's key and position when missing, not an id or taken."""
        key = f.ident(value, f"{path}.primaryKey")
        if key is not None and (kind, key) in seen:
            f.note(f"{path}.primaryKey", UNIQUE, value)
            key = None
        if key is None:
            key = _derived_key(parent, index)
            while (kind, key) in seen:
                key = _derived_key(key, index)
        seen.add((kind, key))
        return key

    def line(kind: str, source_key: str, **values: Any) -> None:
        lines.append({"fullbay_id": fullbay_id, "line_type": kind, "source_key": source_key, **values})

    so = "ServiceOrder"
    complaint_keys: set[str] = set()
    for c_index, where, complaint in f.items(order.get("Complaints"), f"{so}.Complaints"):
        complaint_id = f.ident(complaint.get("primaryKey"), f"{where}.primaryKey")
        if complaint_id is None or complaint_id in complaint_keys:
            complaint_id = f"#{c_index}"
        complaint_keys.add(complaint_id)
        technicians = [
            name
            for _, tp, t in f.items(complaint.get("AssignedTechnicians"), f"{where}.AssignedTechnicians")
            if (name := f.text(t.get("technician"), f"{tp}.technician"))
        ]
        for r_index, at, correction in f.items(complaint.get("Corrections"), f"{where}.Corrections"):
            correction_id = key_of("labor", correction.get("primaryKey"), at, complaint_id, r_index)
            title = f.text(correction.get("actualCorrection"), f"{at}.actualCorrection") or f.text(
                correction.get("title"), f"{at}.title"
            )
            line(
                "labor",
                correction_id,
                complaint_id=complaint_id,
                description=title,
                component=f.text(correction.get("globalComponent"), f"{at}.globalComponent"),
                quantity=f.num(correction.get("laborHoursTotal"), f"{at}.laborHoursTotal"),
                unit_price=None,
                unit_cost=None,
                rate_name=f.text(correction.get("laborRate"), f"{at}.laborRate"),
                amount=_amount(f, correction.get("laborTotal"), f"{at}.laborTotal"),
                taxable=f.flag(correction.get("taxable"), f"{at}.taxable"),
                technicians=technicians or None,
                created_at=f.stamp(correction.get("created"), f"{at}.created"),
            )
            for p_index, pt, part in f.items(correction.get("Parts"), f"{at}.Parts"):
                quantity = _amount(f, part.get("quantity"), f"{pt}.quantity")
                price = _amount(f, part.get("sellingPrice"), f"{pt}.sellingPrice")
                line(
                    "part",
                    key_of("part", part.get("primaryKey"), pt, correction_id, p_index),
                    complaint_id=complaint_id,
                    description=f.text(part.get("description"), f"{pt}.description"),
                    component=f.text(part.get("shopPartNumber"), f"{pt}.shopPartNumber"),
                    quantity=quantity,
                    unit_price=price,
                    unit_cost=f.num(part.get("cost"), f"{pt}.cost"),
                    rate_name=None,
                    amount=None if quantity is None or price is None else _line_amount(f, quantity, price, pt),
                    taxable=f.flag(part.get("taxable"), f"{pt}.taxable"),
                    technicians=None,
                    created_at=f.stamp(part.get("created"), f"{pt}.created"),
                )
    for m_index, mt, charge in f.items(order.get("MiscCharges"), f"{so}.MiscCharges"):
        quantity = charge.get("quantity")
        line(
            "misc",
            key_of("misc", charge.get("primaryKey"), mt, "", m_index),
            complaint_id=None,
            description=f.text(charge.get("description"), f"{mt}.description"),
            component=None,
            quantity=Decimal(1) if blank(quantity) else f.num(quantity, f"{mt}.quantity"),
            unit_price=f.num(charge.get("rate"), f"{mt}.rate"),
            unit_cost=None,
            rate_name=None,
            amount=_amount(f, charge.get("amount"), f"{mt}.amount"),
            taxable=f.flag(charge.get("taxable"), f"{mt}.taxable"),
            technicians=None,
            created_at=None,
        )
    return lines


def _line_amount(f: Fields, quantity: Decimal, price: Decimal, path: str) -> Decimal | None:
    amount = (quantity * price).quantize(CENT, ROUND_HALF_UP)
    if abs(amount) >= MAX_AMOUNT:
        f.note(f"{path}.quantity*sellingPrice", NUMBER, str(amount))
        return None
    return amount


def storable_json(record: dict[str, Any]) -> str:
    """The record's canonical JSON text (what ``content_hash`` hashes), checked to be
    something PostgreSQL's JSONB accepts; RecordError says why not."""
    try:
        dumped = canonical_json(record)
    except ValueError:
        raise RecordError(
            "contains NaN, Infinity or a number beyond a double's range (e.g. 1e400), which JSON cannot carry"
        ) from None
    if "\\u0000" in dumped and _JSON_NUL.search(dumped):
        raise RecordError("contains a NUL character, which PostgreSQL cannot store")
    if not dumped.isascii():
        try:
            dumped.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError("contains invalid Unicode (a lone surrogate)") from None
    return dumped


def text_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Checked:
    """A record fit for the warehouse: its key, canonical JSON text and content hash."""

    key: str
    text: str
    digest: str


def check_record(record: Any, day: date) -> Checked:
    """What the raw table needs to hold ``record`` as an invoice of ``day`` (a key, the
    date, JSON that PostgreSQL accepts); RecordError, with a reason for the
    quarantine, when it cannot. Normalising is the work-orders step's concern."""
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object ({type(record).__name__})")
    key = invoice_key(record)
    dated = invoice_day(record)
    if dated != day:
        raise RecordError(f"invoiceDate {dated} is not the requested day {day}")
    text = storable_json(record)
    return Checked(key, text, text_hash(text))
