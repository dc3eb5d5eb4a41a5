"""Turning one Fullbay invoice into a work-order row and its line rows.

Fullbay's types wander (ids as strings or ints, money as numbers or strings,
"" or null for empty, "Yes"/"No" flags, timestamps without a zone); every value
goes through one of the parsers below so the warehouse gets exact types.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
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


def decimal(value: Any, name: str) -> Decimal | None:
    kind = type(value)  # exact-type dispatch: this runs for every amount of every line
    if value is None:
        return None
    if kind is int:
        number = Decimal(value)
    elif kind is float:
        number = Decimal(repr(value))  # not Decimal(value): that would keep the binary error of 0.1
    elif kind is str:
        stripped = value.strip()
        if not stripped:
            return None
        try:
            number = Decimal(stripped.replace(",", ""))
        except InvalidOperation:
            raise RecordError(f"{name} is not a number: {value[:40]!r}") from None
    else:
        raise RecordError(f"{name} is a {kind.__name__}, not a number")
    if not number.is_finite():
        raise RecordError(f"{name} is not a finite number: {value!r}")
    if abs(number) >= MAX_AMOUNT:
        raise RecordError(f"{name} is out of range (|value| >= 10^12): {str(value)[:40]}")
    if number.as_tuple().exponent < -MAX_DECIMALS:  # type: ignore[operator]
        # NUMERIC(16, 4) would round it silently; a record is loaded exactly or not at all.
        raise RecordError(f"{name} has more than {MAX_DECIMALS} decimal places: {str(value)[:40]}")
    return number


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
    if blank(value):
        return None
    raw = str(value).strip()
    if raw.startswith("0000-00-00"):
        return None
    try:
        # fromisoformat is C and ~10x faster than strptime; the shape check keeps it strict.
        if len(raw) != 19 or raw[10] != " ":
            raise ValueError
        parsed = datetime.fromisoformat(raw).replace(tzinfo=zone)
        parsed.astimezone(UTC)  # stored as UTC: 9999-12-31 23:00 west of Greenwich does not fit
    except (ValueError, OverflowError):
        raise RecordError(f"{name} is not a storable 'YYYY-MM-DD HH:MM:SS' timestamp: {raw[:30]!r}") from None
    return parsed


def _obj(value: Any, name: str) -> dict[str, Any]:
    if blank(value):
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{name} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, name: str) -> list[dict[str, Any]]:
    if blank(value):
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RecordError(f"{name} must be a list of objects")
    return value


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


def normalise_invoice(record: dict[str, Any], zone: ZoneInfo) -> NormalisedInvoice:
    """The work-order row (without bookkeeping columns) and its part, labor and misc lines."""
    if not isinstance(record, dict):
        raise RecordError(f"an invoice must be a JSON object, got {type(record).__name__}")
    fullbay_id = invoice_key(record)
    order = _obj(record.get("ServiceOrder"), "ServiceOrder")
    customer = _obj(record.get("Customer"), "Customer") or _obj(order.get("Customer"), "ServiceOrder.Customer")
    unit = _obj(order.get("Unit"), "ServiceOrder.Unit")
    tax = _obj(record.get("TaxInformation"), "TaxInformation")

    def money(name: str, source: dict[str, Any] = record, prefix: str = "") -> Decimal | None:
        return decimal(source.get(name), prefix + name)

    total, balance = money("total"), money("balance")
    tax_amount = money("taxTotal") if not blank(record.get("taxTotal")) else money("taxTotal", tax, "TaxInformation.")
    work_order = {
        "fullbay_id": fullbay_id,
        "work_order_number": short(order.get("repairOrderNumber"), "ServiceOrder.repairOrderNumber"),
        "invoice_number": short(record.get("invoiceNumber"), "invoiceNumber"),
        "invoice_date": invoice_day(record),
        "due_date": parse_date(record.get("dueDate"), "dueDate"),
        "service_order_id": ident(order.get("primaryKey"), "ServiceOrder.primaryKey"),
        "customer_id": ident(customer.get("customerId"), "Customer.customerId"),
        "customer_name": text(customer.get("title")) or text(record.get("customerTitle")),
        "shop_title": text(record.get("shopTitle")),
        "vehicle_info": {k: unit.get(k) for k in sorted(unit)} or None,
        "status": status_from_balance(balance, total),
        "created_at": parse_timestamp(record.get("created"), "created", zone),
        "total_amount": total,
        "labor_amount": money("laborTotal"),
        "parts_amount": money("partsTotal"),
        "tax_amount": tax_amount,
        "supplies_amount": money("suppliesTotal"),
        "misc_amount": money("miscChargeTotal"),
        "subtotal_amount": money("subTotal"),
        "balance": balance,
        "labor_hours": money("laborHoursTotal"),
        "exported": flag(record.get("exported"), "exported"),
        "so_created_at": parse_timestamp(order.get("created"), "ServiceOrder.created", zone),
        "so_started_at": parse_timestamp(order.get("startDateTime"), "ServiceOrder.startDateTime", zone),
        "so_completed_at": parse_timestamp(order.get("completionDateTime"), "ServiceOrder.completionDateTime", zone),
    }
    return NormalisedInvoice(work_order, _lines(fullbay_id, order, zone))


def _derived_key(parent: str, index: int) -> str:
    """A stable key for a line Fullbay gave none: its parent's key and its position,
    hashed when that would not fit the column."""
    key = f"{parent}#{index}"
    return key if len(key) <= MAX_KEY_LENGTH else hashlib.sha256(key.encode()).hexdigest()


def _lines(fullbay_id: str, order: dict[str, Any], zone: ZoneInfo) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []

    def line(kind: str, source_key: str, **values: Any) -> None:
        lines.append({"fullbay_id": fullbay_id, "line_type": kind, "source_key": source_key, **values})

    for c_index, complaint in enumerate(_list(order.get("Complaints"), "Complaints")):
        where = f"Complaints[{c_index}]"
        complaint_id = ident(complaint.get("primaryKey"), f"{where}.primaryKey") or f"#{c_index}"
        technicians = [
            text(t.get("technician"))
            for t in _list(complaint.get("AssignedTechnicians"), f"{where}.AssignedTechnicians")
            if text(t.get("technician"))
        ]
        for r_index, correction in enumerate(_list(complaint.get("Corrections"), f"{where}.Corrections")):
            at = f"{where}.Corrections[{r_index}]"
            correction_id = ident(correction.get("primaryKey"), f"{at}.primaryKey") or _derived_key(
                complaint_id, r_index
            )
            title = text(correction.get("actualCorrection")) or text(correction.get("title"))
            line(
                "labor",
                correction_id,
                complaint_id=complaint_id,
                description=title,
                component=text(correction.get("globalComponent")),
                quantity=decimal(correction.get("laborHoursTotal"), f"{at}.laborHoursTotal"),
                unit_price=decimal(correction.get("laborRate"), f"{at}.laborRate"),
                unit_cost=None,
                amount=decimal(correction.get("laborTotal"), f"{at}.laborTotal") or Decimal(0),
                taxable=flag(correction.get("taxable"), f"{at}.taxable"),
                technicians=technicians or None,
                created_at=parse_timestamp(correction.get("created"), f"{at}.created", zone),
            )
            for p_index, part in enumerate(_list(correction.get("Parts"), f"{at}.Parts")):
                pt = f"{at}.Parts[{p_index}]"
                quantity = decimal(part.get("quantity"), f"{pt}.quantity") or Decimal(0)
                price = decimal(part.get("sellingPrice"), f"{pt}.sellingPrice") or Decimal(0)
                line(
                    "part",
                    ident(part.get("primaryKey"), f"{pt}.primaryKey") or _derived_key(correction_id, p_index),
                    complaint_id=complaint_id,
                    description=text(part.get("description")),
                    component=text(part.get("shopPartNumber")),
                    quantity=quantity,
                    unit_price=price,
                    unit_cost=decimal(part.get("cost"), f"{pt}.cost"),
                    amount=(quantity * price).quantize(CENT, ROUND_HALF_UP),
                    taxable=flag(part.get("taxable"), f"{pt}.taxable"),
                    technicians=None,
                    created_at=parse_timestamp(part.get("created"), f"{pt}.created", zone),
                )
    for m_index, charge in enumerate(_list(order.get("MiscCharges"), "MiscCharges")):
        mt = f"MiscCharges[{m_index}]"
        line(
            "misc",
            ident(charge.get("primaryKey"), f"{mt}.primaryKey") or f"#{m_index}",
            complaint_id=None,
            description=text(charge.get("description")),
            component=None,
            quantity=Decimal(1),
            unit_price=decimal(charge.get("amount"), f"{mt}.amount"),
            unit_cost=None,
            amount=decimal(charge.get("amount"), f"{mt}.amount") or Decimal(0),
            taxable=flag(charge.get("taxable"), f"{mt}.taxable"),
            technicians=None,
            created_at=None,
        )
    seen: set[tuple[str, str]] = set()
    for item in lines:
        key = (item["line_type"], item["source_key"])
        if key in seen:
            raise RecordError(f"two {key[0]} lines share the key {key[1]!r}")
        seen.add(key)
    return lines


def storable_json(record: dict[str, Any]) -> str:
    """The record's canonical JSON text (what ``content_hash`` hashes), checked to be
    something PostgreSQL's JSONB accepts; RecordError says why not."""
    try:
        dumped = canonical_json(record)
    except ValueError:
        raise RecordError("contains NaN or Infinity, which JSON cannot carry") from None
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
