"""Bulk writes: PostgreSQL COPY for rows known to be new, INSERT .. ON CONFLICT for
the rest, and the SQLite equivalents.

COPY is hand-fed here (text format through psycopg2's ``copy_expert``) because
SQLAlchemy has no COPY construct; its ``executemany`` of INSERTs is several times
slower for the tens of thousands of line rows of a busy day.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


class JsonText(str):
    """JSON already serialised (the canonical text that was hashed): written as is."""


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_field(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).translate(_COPY_ESCAPES)


def _text_field(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


# By exact type: a dict lookup per field instead of a chain of isinstance checks
# (a busy day has over a million fields). Anything else (Decimal, int, date,
# timezone-aware datetime) is written as its str(), which PostgreSQL parses.
_COPY_FIELD: dict[type, Any] = {
    type(None): lambda _: "\\N",
    str: _text_field,
    JsonText: _text_field,
    bool: lambda value: "t" if value else "f",
    dict: _json_field,
    list: _json_field,
}


def _copy_line(row: dict[str, Any], columns: list[str]) -> str:  # the hot loop of a COPY
    return "\t".join([_COPY_FIELD.get(type(value), str)(value) for value in map(row.__getitem__, columns)])


def _json_values(row: dict[str, Any]) -> dict[str, Any]:
    """For paths that let SQLAlchemy serialise JSON columns: parse pre-serialised text back."""
    return {k: json.loads(v) if isinstance(v, JsonText) else v for k, v in row.items()}


def insert_new(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows whose keys are not in ``table`` (the caller holds the partition lock)."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), [_json_values(row) for row in rows])
        return
    columns = list(rows[0])
    buffer = io.StringIO()
    for row in rows:
        buffer.write(_copy_line(row, columns))
        buffer.write("\n")
    buffer.seek(0)
    names = ", ".join(f'"{column}"' for column in columns)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN', buffer)
    finally:
        cursor.close()


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """INSERT .. ON CONFLICT DO UPDATE, for PostgreSQL and SQLite alike; ``keep``
    columns keep their stored value on update."""
    if not rows:
        return
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)
    updates = {column: insert.excluded[column] for column in rows[0] if column not in (*keys, *keep)}
    connection.execute(
        insert.on_conflict_do_update(index_elements=list(keys), set_=updates), [_json_values(row) for row in rows]
    )
