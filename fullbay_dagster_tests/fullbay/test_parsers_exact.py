"""The fast paths of records.decimal and records.parse_timestamp give exactly what the
straightforward versions they replaced gave: same value (and exponent), same error."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fullbay_dagster.fullbay.records import MAX_AMOUNT, MAX_DECIMALS, RecordError, blank, decimal, parse_timestamp


def reference_decimal(value: Any, name: str) -> Decimal | None:
    """records.decimal before the fast path (as_tuple on every number)."""
    kind = type(value)
    if value is None:
        return None
    if kind is int:
        number = Decimal(value)
    elif kind is float:
        number = Decimal(repr(value))
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
        raise RecordError(f"{name} has more than {MAX_DECIMALS} decimal places: {str(value)[:40]}")
    return number


def reference_timestamp(value: Any, name: str, zone: ZoneInfo) -> datetime | None:
    """records.parse_timestamp before the fast path (UTC conversion of every value)."""
    if blank(value):
        return None
    raw = str(value).strip()
    if raw.startswith("0000-00-00"):
        return None
    try:
        if len(raw) != 19 or raw[10] != " ":
            raise ValueError
        parsed = datetime.fromisoformat(raw).replace(tzinfo=zone)
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RecordError(f"{name} is not a storable 'YYYY-MM-DD HH:MM:SS' timestamp: {raw[:30]!r}") from None
    return parsed


def outcome(parse: Any, *args: Any) -> tuple[str, Any]:
    try:
        result = parse(*args)
    except RecordError as exc:
        return "error", str(exc)
    # repr keeps what == hides: Decimal("1.50") vs Decimal("1.5"), the tzinfo object.
    return "value", (repr(result), getattr(result, "tzinfo", None))


NUMBER_TEXT = st.text(alphabet="0123456789.,-+eE_ ", max_size=16) | st.decimals(places=None).map(str)


@given(st.none() | st.integers() | st.floats() | NUMBER_TEXT | st.booleans())
@example("1.23456")
@example("1.2345")
@example("1_0.5")
@example("1.2_3456")
@example("1e-5")
@example(" 12.30000 ")
@example(1e-05)
@example(123.45678)
@example("999999999999.9999")
@example(-0.0)
@example(0.0)
@example("-0.0")
@example(float("nan"))
def test_decimal_fast_path_is_exact(value: Any) -> None:
    # Twice, under two names: the second call may come from the parsed values kept,
    # and must give the same value (the sign of a zero too) or the error naming its field.
    assert outcome(decimal, value, "amount") == outcome(reference_decimal, value, "amount")
    assert outcome(decimal, value, "Parts[0].cost") == outcome(reference_decimal, value, "Parts[0].cost")


STAMP_TEXT = st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="seconds")) | st.text(
    alphabet="0123456789-: T", max_size=20
)
ZONES = st.sampled_from([ZoneInfo("America/Chicago"), ZoneInfo("Asia/Tokyo"), ZoneInfo("UTC")])


@given(st.none() | STAMP_TEXT | st.integers(), ZONES)
@example("9999-12-31 23:30:00", ZoneInfo("America/Chicago"))
@example("0001-01-01 00:30:00", ZoneInfo("Asia/Tokyo"))
@example("9999-12-31 23:30:00", ZoneInfo("Asia/Tokyo"))
@example("  2025-03-01 10:00:00 ", ZoneInfo("UTC"))
def test_parse_timestamp_fast_path_is_exact(value: Any, zone: ZoneInfo) -> None:
    assert outcome(parse_timestamp, value, "created", zone) == outcome(reference_timestamp, value, "created", zone)


@pytest.mark.parametrize("value", ["9999-12-31 23:30:00", "0001-01-01 00:30:00"])
def test_timestamps_that_leave_the_range_in_utc_are_refused(value: str) -> None:
    zone = ZoneInfo("America/Chicago") if value.startswith("9999") else ZoneInfo("Asia/Tokyo")
    with pytest.raises(RecordError, match="storable"):
        parse_timestamp(value, "created", zone)
