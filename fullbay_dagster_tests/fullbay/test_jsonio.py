"""orjson where it is exact, the standard library elsewhere: the same values and
the same canonical text (hence the same content hash) whichever path is taken."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullbay_dagster.fullbay import jsonio
from fullbay_dagster.fullbay.records import canonical_json


def stdlib_canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and types compared too (1 is not 1.0)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b) and not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":NaN,"b":1}',
        '{"a":Infinity}',
        '{"a":1e400}',
        '{"a":123456789012345678901234567890}',
        '{"a":-9999999999999999999}',
        '{"a":"\\ud800x"}',
        '{"a":1.5,"b":[null,true,"\\u0000"]}',
        '{"a":1e-05,"b":0.0001}',
        '"just a string"',
        "[1,2]",
    ],
)
def test_parsing_gives_what_the_standard_library_gives(text: str) -> None:
    expected = json.loads(text)
    assert same(jsonio.parse_json(text.encode()), expected)
    assert same(jsonio.parse_json(text), expected)


def test_what_orjson_cannot_read_exactly_is_marked_lenient() -> None:
    assert type(jsonio.parse_json(b'{"a":NaN}')) is jsonio.LenientBody
    assert type(jsonio.parse_json(b'{"a":123456789012345678901}')) is jsonio.LenientBody
    assert type(jsonio.parse_json(b'{"a":1}')) is dict


def test_invalid_json_is_a_value_error() -> None:
    for bad in (b"<html>", b'{"a":', b"\xff\xfe\x00"):
        with pytest.raises(ValueError):
            jsonio.parse_json(bad)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8))
def test_a_record_survives_the_spool_and_hashes_as_before(record: dict[str, Any]) -> None:
    line = jsonio.dump_record(record, strict=False)
    parsed = jsonio.parse_json(line)
    strict_line = jsonio.dump_record(parsed, strict=type(parsed) is not jsonio.LenientBody)
    for spooled in (line, strict_line):
        back = jsonio.parse_record(spooled)
        assert same(back, record)
        assert canonical_json(back) == stdlib_canonical(record)


@pytest.mark.parametrize("value", [1e-05, -3.2e-7, 0.00001234, 5e-324])
def test_floats_orjson_writes_differently_take_the_standard_path(value: float) -> None:
    record = jsonio.parse_record(json.dumps({"hours": value, "note": "x"}).encode())
    assert type(record) is jsonio.StrictRecord
    assert canonical_json(record) == stdlib_canonical({"hours": value, "note": "x"})


def test_nan_is_refused_whichever_path() -> None:
    lenient = jsonio.parse_record(b'{"total":NaN}\n')
    assert type(lenient) is jsonio.LenientBody
    for record in (lenient, {"total": float("nan")}):
        with pytest.raises(ValueError):
            canonical_json(record)
