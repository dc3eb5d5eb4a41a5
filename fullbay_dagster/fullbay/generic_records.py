"""Identity and typed columns of a record from any endpoint but invoices.

The rules are the invoice's (``records``): identity strict (the key field, and the
date field once confirmed), content tolerant (a value that does not fit its typed
column is NULL there and a :class:`~fullbay_dagster.fullbay.records.FieldIssue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from fullbay_dagster.fullbay.endpoints import INVOICES, Endpoint, Typed
from fullbay_dagster.fullbay.records import (
    Checked,
    FieldIssue,
    Fields,
    RecordError,
    check_record,
    ident,
    parse_date,
    storable_json,
    text_hash,
)

_UTC = ZoneInfo("UTC")


def record_key(endpoint: Endpoint, record: Any) -> str:
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object ({type(record).__name__})")
    key = ident(record.get(endpoint.key_field), endpoint.key_field)
    if key is None:
        raise RecordError(f"no {endpoint.key_field}")
    return key


def check_endpoint_record(endpoint: Endpoint, record: Any, day: date) -> Checked:
    """What ``fullbay_raw_records`` needs to hold ``record`` as one of ``day``."""
    key = record_key(endpoint, record)
    if endpoint.date_field:
        dated = parse_date(record.get(endpoint.date_field), endpoint.date_field)
        if dated != day:
            raise RecordError(f"{endpoint.date_field} {dated} is not the requested day {day}")
    stored = storable_json(record)
    return Checked(key, stored, text_hash(stored))


def record_check(endpoint: Endpoint) -> Callable[[Any, date], Checked]:
    """How a record of ``endpoint`` is placed on a day (RecordError when it cannot be):
    the spool checks with it as it writes, the raw landing whatever the spool did not."""
    if endpoint.name == INVOICES.name:
        return check_record
    return partial(check_endpoint_record, endpoint)


@dataclass(frozen=True)
class NormalisedRecord:
    row: dict[str, Any]
    lines: list[dict[str, Any]]
    issues: list[FieldIssue]


def _value(f: Fields, obj: dict[str, Any], path: str, prefix: str) -> Any:
    """The value at dotted ``path``; a non-object on the way is an issue and gives None."""
    *parents, last = path.split(".")
    walked = prefix
    for part in parents:
        walked += part
        obj = f.obj(obj.get(part), walked)
        walked += "."
    return obj.get(last)


def _typed(f: Fields, obj: dict[str, Any], columns: tuple[Typed, ...], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in columns:
        value, path = _value(f, obj, column.path, prefix), prefix + column.path
        if column.kind == "id":
            out[column.column] = f.ident(value, path)
        elif column.kind == "number":
            out[column.column] = f.num(value, path)
        elif column.kind == "date":
            out[column.column] = f.day(value, path)
        else:
            out[column.column] = f.text(value, path)
    return out


def normalise_record(endpoint: Endpoint, record: dict[str, Any], key: str, day: date) -> NormalisedRecord:
    """The typed row and line rows of one record (already checked), with its field issues."""
    f = Fields(_UTC)
    row = {"fullbay_id": key, "record_date": day, **_typed(f, record, endpoint.columns, "")}
    lines = []
    if endpoint.lines_path:
        for index, at, item in f.items(record.get(endpoint.lines_path), endpoint.lines_path):
            values = _typed(f, item, endpoint.line_columns, f"{at}.")
            lines.append({"fullbay_id": key, "line_index": index, "record_date": day, **values})
    unique = {issue.path: issue for issue in f.issues}  # one issue per path, e.g. a non-object parent
    return NormalisedRecord(row, lines, list(unique.values()))
