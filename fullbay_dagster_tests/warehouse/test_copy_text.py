"""The COPY text escaped a batch at once is byte for byte what the field-by-field
path gives, whichever values a row holds (the batch falls back to that path when
a value holds one of its stand-in characters)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fullbay_dagster.warehouse.bulk import JsonText, _copy_line, _copy_text

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    TEXT,
    TEXT.map(JsonText),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.dates(min_value=date(1, 1, 1)),
    st.datetimes(timezones=st.just(UTC)),
    st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, st.one_of(st.none(), TEXT, st.integers()), max_size=3),
)
COLUMNS = ["a", "b", "c", "d"]


def field_by_field(rows: list[dict[str, Any]]) -> str:
    return "".join(_copy_line(row, COLUMNS) + "\n" for row in rows)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: VALUES for name in COLUMNS}), min_size=1, max_size=5))
def test_batch_escaping_equals_field_by_field(rows: list[dict[str, Any]]) -> None:
    assert _copy_text(rows, COLUMNS) == field_by_field(rows)


def test_json_columns_and_control_characters() -> None:
    rows = [
        {"a": ["Ann\tLee", "Bo\nB"], "b": {"k": "v\\w", "n": 2**70}, "c": Decimal("1.50"), "d": None},
        {"a": "x\x01y", "b": True, "c": datetime(2025, 3, 1, tzinfo=UTC), "d": JsonText('{"a":1}')},
    ]
    assert _copy_text(rows[:1], COLUMNS) == field_by_field(rows[:1])
    assert _copy_text(rows, COLUMNS) == field_by_field(rows)  # a stand-in in a value: field by field
