"""Unit tests of records.py: every type quirk of the Fullbay invoice, one parser at a time,
then whole invoices (the contract's synthetic example and many generated ones)."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fullbay_dagster.fullbay.records import (
    RecordError,
    content_hash,
    decimal,
    flag,
    ident,
    invoice_day,
    invoice_key,
    normalise_invoice,
    parse_date,
    parse_timestamp,
    status_from_balance,
)
from fullbay_dagster.fullbay.synthetic import invoices_for_day

CHICAGO = ZoneInfo("America/Chicago")

# Copied verbatim from /work/shared/fullbay-api.md ("A synthetic example").
CONTRACT_EXAMPLE = """
{"status":"SUCCESS","startRecordNumber":1,"endRecordNumber":1,"resultCount":1,
 "totalCount":1,"pageSize":50,"currentPage":1,"totalPages":1,
 "resultSet":[{"primaryKey":"20481137","exported":"0","invoiceDate":"2025-03-12",
  "dueDate":"2025-04-11","invoiceNumber":"8812","customerTitle":"Prairie Haulers LLC",
  "Customer":{"customerId":4410023,"title":"Prairie Haulers LLC","externalId":null,
              "mainPhone":"(555) 010-2000","secondaryPhone":""},
  "shopTitle":"Example Diesel - North","partsTotal":96.4,"laborHoursTotal":1.5,
  "laborTotal":225,"subletLaborTotal":null,"suppliesTotal":11.25,"subTotal":332.65,
  "TaxInformation":{"taxTitle":"Illinois","taxRate":"6.25","taxTotal":6.03,
    "TaxLineInformation":[{"taxTitle":"State","taxRate":6.25,"taxTotal":"6.03"}]},
  "taxRate":"6.25","taxTotal":6.03,"total":338.68,"balance":338.68,
  "created":"2025-03-12 16:05:41",
  "ServiceOrder":{"primaryKey":"23990415","repairOrderNumber":"10377",
   "Unit":{"customerUnitId":"8120044","number":"T-214","nickname":"","type":"Truck",
           "year":"2019","make":"Freightliner","model":"Cascadia",
           "vin":"1FAKEVIN0KX000214","licensePlate":""},
   "startDateTime":"2025-03-11 08:40:00","completionDateTime":"2025-03-12 15:58:20",
   "created":"2025-03-11 07:55:02","MiscCharges":[],
   "Complaints":[{"primaryKey":51200871,"type":"Complaint","authorized":"Yes",
     "note":"OIL LEAK AT FRONT OF ENGINE","laborHoursTotal":1.5,"laborTotal":225,
     "partsTotal":96.4,"created":"2025-03-11 07:55:03",
     "AssignedTechnicians":[{"primaryKey":"53310022","technician":"Lee Park",
                             "technicianNumber":"","actualHours":1.38,"portion":100}],
     "Corrections":[{"primaryKey":"45880310","globalComponent":"ENGINE",
       "actualCorrection":"Replaced front crank seal","laborHoursTotal":1.5,
       "laborTotal":225,"taxable":"Yes","partsTotal":96.4,"created":"2025-03-11 07:55:03",
       "Parts":[{"primaryKey":"71922455","description":"SEAL, FRONT CRANK",
         "shopPartNumber":"FC-1120","vendorPartNumber":"FC-1120","quantity":1,
         "cost":48.7,"sellingPrice":77.9,"taxable":"Yes","inventory":"Yes",
         "created":"2025-03-11 10:02:44"}]}]}]}}]}
"""


def example_invoice() -> dict[str, Any]:
    """A fresh copy of the contract example's single invoice, parsed from the JSON text."""
    return json.loads(CONTRACT_EXAMPLE)["resultSet"][0]


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(("as_str", "as_int"), [("4410023", 4410023), ("51200871", 51200871), ("0", 0)])
def test_ident_string_and_integer_compare_equal_as_text(as_str: str, as_int: int) -> None:
    assert ident(as_str, "id") == ident(as_int, "id") == str(as_int)
    assert isinstance(ident(as_int, "id"), str)


def test_ident_strips_whitespace_and_treats_blank_as_missing() -> None:
    assert ident("  20481137 ", "id") == "20481137"
    assert ident("", "id") is None
    assert ident("   ", "id") is None
    assert ident(None, "id") is None


@pytest.mark.parametrize("bad", [1.5, True, False, [1], {"a": 1}])
def test_ident_rejects_other_types_naming_the_field(bad: Any) -> None:
    with pytest.raises(RecordError, match=r"Customer\.customerId"):
        ident(bad, "Customer.customerId")


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (225, Decimal("225")),
        (0, Decimal("0")),
        (-12.5, Decimal("-12.5")),
        (338.68, Decimal("338.68")),
        (77.9, Decimal("77.9")),
        ("6.03", Decimal("6.03")),
        (" 6.03 ", Decimal("6.03")),
        ("1,234.50", Decimal("1234.50")),
        ("1,234,567.89", Decimal("1234567.89")),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_decimal_accepts_every_money_shape(raw: Any, expected: Decimal | None) -> None:
    value = decimal(raw, "total")
    if expected is None:
        assert value is None
    else:
        assert isinstance(value, Decimal)
        assert value == expected


def test_decimal_is_exact_not_binary_float() -> None:
    # The float 338.68 is really 338.6799999999999499777914024889469146728515625.
    as_float = 338.68
    assert Decimal(as_float) != Decimal("338.68")
    assert decimal(as_float, "total") == Decimal("338.68")
    # 0.1 + 0.2 style: the sum of parsed values is exact, unlike the float sum.
    assert 0.1 + 0.2 != 0.3
    assert decimal(0.1, "a") + decimal(0.2, "b") == Decimal("0.3")
    assert str(decimal(0.1, "a") + decimal(0.2, "b")) == "0.3"


@pytest.mark.parametrize(
    "bad",
    ["NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN", float("nan"), float("inf"), float("-inf")],
)
def test_decimal_rejects_non_finite_naming_the_field(bad: Any) -> None:
    with pytest.raises(RecordError, match="balance"):
        decimal(bad, "balance")


@pytest.mark.parametrize("bad", ["abc", "12.3.4", "$5.00", "1 000", [1], {"x": 1}])
def test_decimal_rejects_garbage_naming_the_field(bad: Any) -> None:
    with pytest.raises(RecordError, match=r"MiscCharges\[0\]\.amount"):
        decimal(bad, "MiscCharges[0].amount")


@pytest.mark.parametrize("bad", [True, False])
def test_decimal_rejects_booleans(bad: bool) -> None:
    with pytest.raises(RecordError, match="partsTotal"):
        decimal(bad, "partsTotal")


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes", True),
        ("No", False),
        ("yes", True),
        ("NO", False),
        (" Yes ", True),
        ("1", True),
        ("0", False),
        ("", None),
        (None, None),
    ],
)
def test_flag(raw: Any, expected: bool | None) -> None:
    assert flag(raw, "taxable") is expected


@pytest.mark.parametrize("bad", ["Maybe", "2", "Yess", "on"])
def test_flag_rejects_garbage_naming_the_field(bad: str) -> None:
    with pytest.raises(RecordError, match=r"Parts\[0\]\.taxable"):
        flag(bad, "Parts[0].taxable")


# --------------------------------------------------------------------------- dates and timestamps


def test_parse_timestamp_attaches_the_configured_zone() -> None:
    parsed = parse_timestamp("2025-03-12 16:05:41", "created", CHICAGO)
    assert parsed is not None
    assert parsed.tzinfo is CHICAGO
    assert (parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second) == (
        2025,
        3,
        12,
        16,
        5,
        41,
    )
    # Chicago is on CDT (UTC-5) on 12 March 2025 (DST began 9 March).
    assert parsed.utcoffset() == timedelta(hours=-5)
    # In January it is CST (UTC-6): the zone, not a fixed offset, is attached.
    winter = parse_timestamp("2025-01-15 08:00:00", "created", CHICAGO)
    assert winter is not None and winter.utcoffset() == timedelta(hours=-6)


def test_parse_timestamp_other_zone_gives_other_instant() -> None:
    chicago = parse_timestamp("2025-03-12 16:05:41", "created", CHICAGO)
    new_york = parse_timestamp("2025-03-12 16:05:41", "created", ZoneInfo("America/New_York"))
    assert chicago is not None and new_york is not None
    assert chicago - new_york == timedelta(hours=1)


@pytest.mark.parametrize("empty", ["0000-00-00 00:00:00", "0000-00-00", "", "  ", None])
def test_parse_timestamp_zero_and_blank_are_none(empty: Any) -> None:
    assert parse_timestamp(empty, "created", CHICAGO) is None


@pytest.mark.parametrize("bad", ["2025-03-12", "2025-03-12T16:05:41", "12/03/2025 16:05:41", "2025-13-01 00:00:00"])
def test_parse_timestamp_rejects_other_formats_naming_the_field(bad: str) -> None:
    with pytest.raises(RecordError, match=r"ServiceOrder\.created"):
        parse_timestamp(bad, "ServiceOrder.created", CHICAGO)


def test_parse_date() -> None:
    assert parse_date("2025-03-12", "dueDate") == date(2025, 3, 12)
    assert parse_date("", "dueDate") is None
    assert parse_date(None, "dueDate") is None
    with pytest.raises(RecordError, match="dueDate"):
        parse_date("03/12/2025", "dueDate")


# --------------------------------------------------------------------------- keys


def test_invoice_key_and_day() -> None:
    record = {"primaryKey": 20481137, "invoiceDate": "2025-03-12"}
    assert invoice_key(record) == "20481137"
    assert invoice_day(record) == date(2025, 3, 12)


@pytest.mark.parametrize("missing", [{}, {"primaryKey": ""}, {"primaryKey": None}])
def test_missing_primary_key_is_a_record_error(missing: dict[str, Any]) -> None:
    with pytest.raises(RecordError, match="primaryKey"):
        invoice_key(missing)
    record = {**example_invoice(), **missing}
    if not missing:
        del record["primaryKey"]
    with pytest.raises(RecordError, match="primaryKey"):
        normalise_invoice(record, CHICAGO)


@pytest.mark.parametrize("value", [None, "", "MISSING"])
def test_missing_invoice_date_is_a_record_error(value: Any) -> None:
    record = example_invoice()
    if value == "MISSING":
        del record["invoiceDate"]
    else:
        record["invoiceDate"] = value
    with pytest.raises(RecordError, match="invoiceDate"):
        invoice_day(record)
    with pytest.raises(RecordError, match="invoiceDate"):
        normalise_invoice(record, CHICAGO)


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("balance", "total", "expected"),
    [
        (Decimal("0"), Decimal("338.68"), "paid"),
        (Decimal("0.00"), Decimal("338.68"), "paid"),
        (Decimal("0"), None, "paid"),
        (Decimal("100.00"), Decimal("338.68"), "partially_paid"),
        (Decimal("338.67"), Decimal("338.68"), "partially_paid"),
        (Decimal("338.68"), Decimal("338.68"), "open"),
        (Decimal("338.68"), None, "open"),
        (Decimal("-5.00"), Decimal("338.68"), "credit"),
        (None, Decimal("338.68"), "unknown"),
        (None, None, "unknown"),
    ],
)
def test_status_from_balance(balance: Decimal | None, total: Decimal | None, expected: str) -> None:
    assert status_from_balance(balance, total) == expected


# --------------------------------------------------------------------------- content hash


def _reorder(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def test_content_hash_is_stable_under_key_reordering() -> None:
    record = example_invoice()
    reordered = _reorder(record)
    assert list(reordered) != list(record)
    assert list(reordered["ServiceOrder"]) != list(record["ServiceOrder"])
    assert content_hash(reordered) == content_hash(record)
    assert content_hash(json.loads(json.dumps(record))) == content_hash(record)


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*path, i))]
    return [path]


def _changed(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return f"{value}x"


def test_content_hash_changes_for_any_value_change() -> None:
    record = example_invoice()
    original = content_hash(record)
    paths = _leaf_paths(record)
    assert len(paths) > 60
    seen = {original}
    for path in paths:
        changed = copy.deepcopy(record)
        target = changed
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = _changed(target[path[-1]])
        digest = content_hash(changed)
        assert digest != original, path
        seen.add(digest)
    assert len(seen) == len(paths) + 1


def test_content_hash_tells_types_and_empties_apart() -> None:
    base = {"primaryKey": "1", "balance": 0}
    assert content_hash({**base, "primaryKey": 1}) != content_hash(base)
    assert content_hash({**base, "balance": None}) != content_hash({**base, "balance": ""})
    assert content_hash({**base, "extra": None}) != content_hash(base)


# --------------------------------------------------------------------------- the contract example


def test_normalise_contract_example_work_order() -> None:
    wo = normalise_invoice(example_invoice(), CHICAGO).work_order
    assert wo["fullbay_id"] == "20481137"
    assert wo["work_order_number"] == "10377"
    assert wo["invoice_number"] == "8812"
    assert wo["service_order_id"] == "23990415"
    assert wo["customer_id"] == "4410023"
    assert wo["customer_name"] == "Prairie Haulers LLC"
    assert wo["shop_title"] == "Example Diesel - North"
    assert wo["invoice_date"] == date(2025, 3, 12)
    assert wo["due_date"] == date(2025, 4, 11)
    assert wo["parts_amount"] == Decimal("96.40")
    assert wo["labor_amount"] == Decimal("225")
    assert wo["tax_amount"] == Decimal("6.03")
    assert wo["total_amount"] == Decimal("338.68")
    assert wo["balance"] == Decimal("338.68")
    assert wo["supplies_amount"] == Decimal("11.25")
    assert wo["subtotal_amount"] == Decimal("332.65")
    assert wo["labor_hours"] == Decimal("1.5")
    assert wo["misc_amount"] is None  # not in the example
    for column in ("parts_amount", "labor_amount", "tax_amount", "total_amount", "balance"):
        assert isinstance(wo[column], Decimal), column
    # The example's money adds up: subTotal + tax == total, exactly.
    assert wo["subtotal_amount"] + wo["tax_amount"] == wo["total_amount"]
    assert wo["status"] == "open"
    assert wo["exported"] is False
    assert wo["vehicle_info"] == {
        "customerUnitId": "8120044",
        "number": "T-214",
        "nickname": "",
        "type": "Truck",
        "year": "2019",
        "make": "Freightliner",
        "model": "Cascadia",
        "vin": "1FAKEVIN0KX000214",
        "licensePlate": "",
    }
    created = wo["created_at"]
    assert created == datetime(2025, 3, 12, 16, 5, 41, tzinfo=CHICAGO)
    assert created.tzinfo is not None
    assert created.utcoffset() == timedelta(hours=-5)
    assert wo["so_created_at"] == datetime(2025, 3, 11, 7, 55, 2, tzinfo=CHICAGO)
    assert wo["so_started_at"] == datetime(2025, 3, 11, 8, 40, tzinfo=CHICAGO)
    assert wo["so_completed_at"] == datetime(2025, 3, 12, 15, 58, 20, tzinfo=CHICAGO)


def test_normalise_contract_example_lines() -> None:
    lines = normalise_invoice(example_invoice(), CHICAGO).lines
    by_type = {line["line_type"]: line for line in lines}
    assert sorted(line["line_type"] for line in lines) == ["labor", "part"]
    assert all(line["fullbay_id"] == "20481137" for line in lines)

    part = by_type["part"]
    assert part["source_key"] == "71922455"
    assert part["complaint_id"] == "51200871"  # an integer in the API, text here
    assert part["quantity"] == Decimal(1)
    assert part["unit_price"] == Decimal("77.9")
    assert part["unit_cost"] == Decimal("48.7")
    assert part["amount"] == Decimal(1) * Decimal("77.9")
    assert str(part["amount"]) == "77.90"
    assert part["taxable"] is True
    assert part["description"] == "SEAL, FRONT CRANK"
    assert part["component"] == "FC-1120"
    assert part["created_at"] == datetime(2025, 3, 11, 10, 2, 44, tzinfo=CHICAGO)

    labor = by_type["labor"]
    assert labor["source_key"] == "45880310"
    assert labor["complaint_id"] == "51200871"
    assert labor["amount"] == Decimal("225")
    assert labor["quantity"] == Decimal("1.5")
    assert labor["description"] == "Replaced front crank seal"
    assert labor["component"] == "ENGINE"
    assert labor["technicians"] == ["Lee Park"]
    assert labor["taxable"] is True


def test_tax_falls_back_to_tax_information() -> None:
    record = example_invoice()
    record["taxTotal"] = ""
    record["TaxInformation"]["taxTotal"] = "7.11"
    assert normalise_invoice(record, CHICAGO).work_order["tax_amount"] == Decimal("7.11")


def test_customer_falls_back_to_service_order_customer() -> None:
    record = example_invoice()
    record["Customer"] = None
    record["customerTitle"] = None
    record["ServiceOrder"]["Customer"] = {"customerId": "99", "title": "SO Customer"}
    wo = normalise_invoice(record, CHICAGO).work_order
    assert (wo["customer_id"], wo["customer_name"]) == ("99", "SO Customer")


# --------------------------------------------------------------------------- missing and wrong nested objects


@pytest.mark.parametrize("empty", ["MISSING", None, ""])
def test_no_service_order_still_normalises(empty: Any) -> None:
    record = example_invoice()
    if empty == "MISSING":
        del record["ServiceOrder"]
    else:
        record["ServiceOrder"] = empty
    result = normalise_invoice(record, CHICAGO)
    assert result.lines == []
    wo = result.work_order
    assert wo["fullbay_id"] == "20481137"
    assert wo["work_order_number"] is None
    assert wo["service_order_id"] is None
    assert wo["vehicle_info"] is None
    assert wo["so_created_at"] is None
    assert wo["total_amount"] == Decimal("338.68")
    assert wo["customer_id"] == "4410023"


@pytest.mark.parametrize("empty", [None, "", []])
def test_complaints_empty_gives_no_lines(empty: Any) -> None:
    record = example_invoice()
    record["ServiceOrder"]["Complaints"] = empty
    result = normalise_invoice(record, CHICAGO)
    assert result.lines == []
    assert result.work_order["work_order_number"] == "10377"


@pytest.mark.parametrize("empty", [None, "", []])
def test_parts_empty_keeps_the_labor_line(empty: Any) -> None:
    record = example_invoice()
    record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["Parts"] = empty
    lines = normalise_invoice(record, CHICAGO).lines
    assert [(line["line_type"], line["amount"]) for line in lines] == [("labor", Decimal("225"))]


def test_nulls_everywhere_optional_still_normalise() -> None:
    record = example_invoice()
    record["Customer"] = None
    record["TaxInformation"] = ""
    record["created"] = "0000-00-00 00:00:00"
    record["total"] = ""
    record["balance"] = None
    record["ServiceOrder"]["Unit"] = None
    record["ServiceOrder"]["MiscCharges"] = None
    complaint = record["ServiceOrder"]["Complaints"][0]
    complaint["AssignedTechnicians"] = None
    complaint["primaryKey"] = None
    complaint["Corrections"][0]["primaryKey"] = ""
    complaint["Corrections"][0]["Parts"][0]["primaryKey"] = None
    result = normalise_invoice(record, CHICAGO)
    wo = result.work_order
    assert wo["customer_id"] is None
    assert wo["customer_name"] == "Prairie Haulers LLC"  # from customerTitle
    assert wo["created_at"] is None
    assert wo["status"] == "unknown"
    assert wo["vehicle_info"] is None
    keys = {(line["line_type"], line["source_key"]) for line in result.lines}
    # Fallback keys are derived from positions, and stay distinct.
    assert len(keys) == 2
    labor = next(line for line in result.lines if line["line_type"] == "labor")
    assert labor["technicians"] is None


@pytest.mark.parametrize(
    ("path", "bad", "issue_path", "expected"),
    [
        (("ServiceOrder",), [{"primaryKey": "1"}], "ServiceOrder", "object"),
        (("ServiceOrder",), "text", "ServiceOrder", "object"),
        (("Customer",), [4410023], "Customer", "object"),
        (("ServiceOrder", "Unit"), ["T-214"], "ServiceOrder.Unit", "object"),
        (("ServiceOrder", "Complaints"), {"primaryKey": 1}, "ServiceOrder.Complaints", "list of objects"),
        (("ServiceOrder", "MiscCharges"), ["x"], "ServiceOrder.MiscCharges[0]", "object"),
    ],
)
def test_wrong_nested_type_is_a_field_issue_not_a_lost_invoice(
    path: tuple[str, ...], bad: Any, issue_path: str, expected: str
) -> None:
    record = example_invoice()
    target = record
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    result = normalise_invoice(record, CHICAGO)
    assert result.work_order["fullbay_id"] == "20481137"
    assert [(i.path, i.expected) for i in result.issues] == [(issue_path, expected)]
    assert json.loads(result.issues[0].observed) == (bad[0] if issue_path.endswith("]") else bad)


@pytest.mark.parametrize(
    ("field", "bad", "column"),
    [
        ("total", "abc", "total_amount"),
        ("balance", "NaN", "balance"),
        ("partsTotal", "Infinity", "parts_amount"),
        ("exported", "maybe", "exported"),
        ("created", "yesterday", "created_at"),
        ("laborTotal", "12.123456", "labor_amount"),  # beyond NUMERIC(16, 4): never rounded silently
        ("subTotal", 10**15, "subtotal_amount"),
        ("dueDate", {"d": 1}, "due_date"),
        ("shopTitle", True, "shop_title"),
    ],
)
def test_bad_top_level_value_is_null_with_one_issue(field: str, bad: Any, column: str) -> None:
    record = example_invoice()
    record[field] = bad
    result = normalise_invoice(record, CHICAGO)
    assert result.work_order[column] is None
    assert [i.path for i in result.issues] == [field]
    assert json.loads(result.issues[0].observed) == bad or result.issues[0].observed == json.dumps(bad)


def test_bad_part_value_keeps_the_line_with_null() -> None:
    record = example_invoice()
    record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["Parts"][0]["sellingPrice"] = "abc"
    result = normalise_invoice(record, CHICAGO)
    part = next(line for line in result.lines if line["line_type"] == "part")
    assert (part["unit_price"], part["amount"]) == (None, None)
    assert [i.path for i in result.issues] == ["ServiceOrder.Complaints[0].Corrections[0].Parts[0].sellingPrice"]


def test_a_rate_name_is_not_a_problem() -> None:
    """Fullbay's laborRate is the name of a rate ("Standard"), as the real response shows."""
    record = example_invoice()
    record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["laborRate"] = "Standard"
    result = normalise_invoice(record, CHICAGO)
    labor = next(line for line in result.lines if line["line_type"] == "labor")
    assert (labor["rate_name"], result.issues) == ("Standard", [])


def test_not_an_object_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        normalise_invoice(["not", "an", "invoice"], CHICAGO)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "bad"), [("primaryKey", None), ("primaryKey", 1.5), ("invoiceDate", "soon")])
def test_identity_stays_strict(field: str, bad: Any) -> None:
    record = example_invoice()
    record[field] = bad
    with pytest.raises(RecordError, match=field):
        normalise_invoice(record, CHICAGO)


def test_duplicate_part_keys_get_positional_keys_and_an_issue() -> None:
    record = example_invoice()
    parts = record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["Parts"]
    parts.append({**parts[0], "description": "another seal"})
    result = normalise_invoice(record, CHICAGO)
    keys = [line["source_key"] for line in result.lines if line["line_type"] == "part"]
    assert keys == ["71922455", "45880310#1"]
    assert [(i.path, i.observed) for i in result.issues] == [
        ("ServiceOrder.Complaints[0].Corrections[0].Parts[1].primaryKey", '"71922455"')
    ]


def test_duplicate_part_keys_across_corrections_keep_both_parts() -> None:
    record = example_invoice()
    corrections = record["ServiceOrder"]["Complaints"][0]["Corrections"]
    second = copy.deepcopy(corrections[0])
    second["primaryKey"] = "45880311"  # a distinct correction, but the same part key
    corrections.append(second)
    result = normalise_invoice(record, CHICAGO)
    assert len([line for line in result.lines if line["line_type"] == "part"]) == 2
    assert len(result.issues) == 1


def test_part_and_labor_may_share_a_key() -> None:
    """Keys are per line type: a part whose key equals a correction's key is no duplicate."""
    record = example_invoice()
    record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["Parts"][0]["primaryKey"] = "45880310"
    lines = normalise_invoice(record, CHICAGO).lines
    assert len(lines) == 2


def test_misc_charges_from_string_amounts() -> None:
    record = example_invoice()
    record["ServiceOrder"]["MiscCharges"] = [
        {"primaryKey": "7001", "description": "Road test", "amount": "1,234.50", "taxable": "No"},
        {"primaryKey": 7002, "description": "Towels", "amount": "4.5", "taxable": ""},
    ]
    misc = [line for line in normalise_invoice(record, CHICAGO).lines if line["line_type"] == "misc"]
    assert [(m["source_key"], m["amount"], m["taxable"]) for m in misc] == [
        ("7001", Decimal("1234.50"), False),
        ("7002", Decimal("4.5"), None),
    ]


def test_part_amount_rounds_half_up_to_cents() -> None:
    record = example_invoice()
    part = record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["Parts"][0]
    part["quantity"] = 1.5
    part["sellingPrice"] = 10.05  # 15.075 -> 15.08 (half up), exact in Decimal
    line = next(line for line in normalise_invoice(record, CHICAGO).lines if line["line_type"] == "part")
    assert line["amount"] == Decimal("15.08")


# --------------------------------------------------------------------------- many synthetic invoices

SYNTHETIC_DAYS = [date(2025, 3, 10) + timedelta(days=n) for n in range(4)]


@pytest.mark.parametrize("day", SYNTHETIC_DAYS, ids=str)
def test_synthetic_lines_add_up_exactly(day: date) -> None:
    invoices = invoices_for_day(11, day, 60, day + timedelta(days=30))
    assert len(invoices) == 60
    part_lines_seen = 0
    for invoice in invoices:
        result = normalise_invoice(invoice, CHICAGO)
        wo = result.work_order
        by_type: dict[str, Decimal] = {"part": Decimal(0), "labor": Decimal(0), "misc": Decimal(0)}
        for line in result.lines:
            by_type[line["line_type"]] += line["amount"]
        part_lines_seen += sum(1 for line in result.lines if line["line_type"] == "part")
        assert by_type["part"] == wo["parts_amount"], invoice["primaryKey"]
        assert by_type["labor"] == wo["labor_amount"], invoice["primaryKey"]
        assert by_type["misc"] == wo["misc_amount"], invoice["primaryKey"]
        # Independent of the normaliser: quantity x price from the raw JSON, cents rounded half up.
        expected_parts = sum(
            (
                (Decimal(str(p["quantity"])) * Decimal(str(p["sellingPrice"]))).quantize(Decimal("0.01"), ROUND_HALF_UP)
                for c in invoice["ServiceOrder"]["Complaints"]
                for r in c["Corrections"]
                for p in r["Parts"]
            ),
            Decimal(0),
        )
        assert expected_parts == Decimal(str(invoice["partsTotal"]))
        assert wo["fullbay_id"] == invoice["primaryKey"]
        assert wo["invoice_date"] == day
        assert wo["customer_id"] == str(invoice["Customer"]["customerId"])
        assert wo["created_at"].tzinfo is CHICAGO
        assert wo["status"] in {"paid", "partially_paid", "open"}
    assert part_lines_seen > 60
