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
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

import orjson
import psycopg2.extensions
from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.dialects import postgresql, sqlite


class JsonText(str):
    """JSON already serialised (the canonical text that was hashed): written as is."""


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_text(value: Any) -> str:
    """A JSON column's text for JSONB. orjson is ~25x faster than ``json.dumps`` on the
    small lists and objects of typed rows (a labor line's technicians), and PostgreSQL
    reads both texts as the same JSONB value; only ``json`` writes integers beyond 64
    bits. No NaN gets here: the raw landing refused records holding one."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _json_field(value: Any) -> str:
    return _json_text(value).translate(_COPY_ESCAPES)


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


def _copy_line(row: dict[str, Any], columns: list[str]) -> str:  # the slow path, one field at a time
    return "\t".join([_COPY_FIELD.get(type(value), str)(value) for value in map(row.__getitem__, columns)])


# The fast path escapes a whole batch at once instead of field by field (a busy day
# has millions of fields): fields are joined with stand-ins, the batch's backslashes,
# tabs, newlines and carriage returns are escaped, then the stand-ins become the
# COPY syntax (tab, newline, ``\N``), each step one ``str.replace`` (C, memchr-fast;
# ``str.translate`` leaves its fast path at the first multi-character escape). The
# stand-ins are control characters that text data almost never holds; counting them
# proves the data held none (else the batch goes field by field), so the text is
# byte for byte what ``_copy_line`` gives.
_COPY_BATCH = 2000  # rows escaped at once
_FIELD_END, _ROW_END, _NULL = "\x00", "\x01", "\x02"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_SYNTAX = ((_FIELD_END, "\t"), (_ROW_END, "\n"), (_NULL, "\\N"))


# Unescaped forms of the non-text fields (the batch's escapes apply to them).
_RAW_FIELD: dict[type, Any] = {
    type(None): lambda _: _NULL,
    bool: lambda value: "t" if value else "f",
    dict: _json_text,
    list: _json_text,
}


def _copy_text(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    """COPY text of ``rows``: the rows' lines, each ending in a newline."""
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    raw_field = _RAW_FIELD.get
    nulls = 0
    parts = []
    for row in rows:
        row_values = values(row)
        nulls += row_values.count(None)
        parts.append(
            _FIELD_END.join(
                [
                    value if type(value) is str or type(value) is JsonText else raw_field(type(value), str)(value)
                    for value in row_values
                ]
            )
        )
    parts.append("")
    batch = _ROW_END.join(parts)
    if (
        batch.count(_ROW_END) != len(rows)
        or batch.count(_FIELD_END) != len(rows) * (len(columns) - 1)
        or batch.count(_NULL) != nulls
    ):
        # A value held a stand-in character itself: field by field instead.
        return "".join(_copy_line(row, columns) + "\n" for row in rows)
    for plain, escaped in (*_ESCAPES, *_SYNTAX):
        if plain in batch:
            batch = batch.replace(plain, escaped)
    return batch


def _json_values(row: dict[str, Any]) -> dict[str, Any]:
    """For paths that let SQLAlchemy serialise JSON columns: parse pre-serialised text back."""
    return {k: json.loads(v) if isinstance(v, JsonText) else v for k, v in row.items()}


def insert_new(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], *, background: bool = False
) -> None:
    """Insert rows whose keys are not in ``table`` (the caller holds the partition lock).

    ``background``: on PostgreSQL the COPY runs in a thread while the caller goes
    on with work that needs no database (parsing and shaping the next batch), so
    the server's work (JSONB parsing, compression, indexes) uses the other core.
    The connection's next statement, commit or rollback waits for it first (see
    ``await_copy``), so statements still run in order, in the same transaction,
    and a failed COPY fails the load at that point.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), [_json_values(row) for row in rows])
        return
    await_copy(connection)
    columns = list(rows[0])
    dbapi_connection = connection.connection.dbapi_connection
    codec = psycopg2.extensions.encodings[dbapi_connection.encoding]  # type: ignore[union-attr]
    # Encoded batch by batch (the escaping copies stay small) into one bytes object:
    # a StringIO of the whole text would hold up to 4 bytes a character.
    data = b"".join(
        _copy_text(rows[first : first + _COPY_BATCH], columns).encode(codec)
        for first in range(0, len(rows), _COPY_BATCH)
    )
    names = ", ".join(f'"{column}"' for column in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    if not background:
        _copy(dbapi_connection, statement, data)
        return
    _watch(connection.engine)
    _PENDING[connection] = _COPIES.submit(_copy, dbapi_connection, statement, data)


# One COPY at a time per connection; a few connections may load side by side.
_COPIES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fullbay-copy")
# By SQLAlchemy connection, not in its ``info``: that needs a live connection, and a
# rollback after the server dropped it must still wait for the COPY's thread.
_PENDING: WeakKeyDictionary[Connection, Future[None]] = WeakKeyDictionary()


def _copy(dbapi_connection: Any, statement: str, data: bytes) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # One read of the whole buffer: psycopg2 takes the GIL for each read and sends
        # without it, so a background COPY does not contend with the caller's thread.
        cursor.copy_expert(statement, io.BytesIO(data), size=max(len(data), 8192))
    finally:
        cursor.close()


def await_copy(connection: Connection) -> None:
    """Wait for the connection's background COPY; raises what it raised."""
    pending = _PENDING.pop(connection, None)
    if pending is not None:
        pending.result()


def _await_quietly(connection: Connection) -> None:
    """Before a rollback: the COPY must be off the wire; its error is not the one to report."""
    pending = _PENDING.pop(connection, None)
    if pending is not None:
        pending.exception()


def _await_before_execute(connection: Connection, *args: Any) -> None:
    await_copy(connection)


def _watch(engine: Engine) -> None:
    """Make every statement, commit and rollback of ``engine`` wait for a background COPY."""
    if not event.contains(engine, "before_execute", _await_before_execute):
        event.listen(engine, "before_execute", _await_before_execute)
        event.listen(engine, "commit", await_copy)
        event.listen(engine, "rollback", _await_quietly)


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
