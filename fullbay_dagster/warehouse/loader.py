"""Idempotent, transactional loading of one invoice day: the invoices' names for the
one path every endpoint takes (``raw_landing`` and ``typed_build``).

Each function loads one day in one transaction: the day either fully lands or the
tables are left as they were. Rows are upserted by key; a record whose content
hash is unchanged is not rewritten (only its last-seen time moves), so a rerun of
the same data leaves the business columns byte-for-byte the same. On PostgreSQL a
transaction-scoped advisory lock per (table, day) serialises concurrent loads of
the same partition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, func, select

from fullbay_dagster.fullbay.endpoints import INVOICES
from fullbay_dagster.fullbay.records import canonical_json
from fullbay_dagster.warehouse.day_load import BATCH_SIZE, LoadCounts
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.typed_build import build_day, record_schema

__all__ = [
    "BATCH_SIZE",
    "LoadCounts",
    "build_work_orders_day",
    "count_live_rows",
    "load_raw_day",
    "record_schema",
    "table_checksum",
]


def load_raw_day(
    engine: Engine,
    day: date,
    records: Iterable[Any],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
) -> LoadCounts:
    """Load the API's answer for ``day`` into ``fullbay_raw_work_orders``:
    :func:`~fullbay_dagster.warehouse.raw_landing.land_raw_day` for invoices.

    ``records`` must be the complete answer for the day: invoices of that day that
    are in the table but not in ``records`` are marked deleted (not removed). A record
    that cannot be loaded goes to ``fullbay_quarantine`` with the reason; the rest of
    the day loads. ``fetched_at`` is when the answer was received: a row that came
    from a later answer is never overwritten by an earlier one.
    """
    return land_raw_day(engine, INVOICES, day, records, run_id=run_id, now=now, fetched_at=fetched_at)


def build_work_orders_day(
    engine: Engine,
    day: date,
    *,
    zone: ZoneInfo,
    source: str,
    now: datetime | None = None,
    run_id: str | None = None,
) -> LoadCounts:
    """Bring ``fullbay_work_orders`` and its lines in line with the raw rows of ``day``:
    :func:`~fullbay_dagster.warehouse.typed_build.build_day` for invoices (changed
    invoices only; lines and field issues replaced as a whole; orphans marked deleted;
    raw_data merged inside PostgreSQL)."""
    return build_day(engine, INVOICES, day, zone=zone, source=source, now=now, run_id=run_id)


def table_checksum(engine: Engine, table: Table, exclude: Sequence[str] = ()) -> str:
    """A digest of every row (ordered by primary key), for proving two loads equal."""
    digest = hashlib.sha256()
    columns = [c for c in table.columns if c.name not in exclude]
    with engine.connect() as connection:
        result = connection.execute(select(*columns).order_by(*table.primary_key.columns))
        for row in result:
            digest.update(canonical_json({k: _plain(v) for k, v in row._mapping.items()}).encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    return None if value is None else str(value)


def count_live_rows(engine: Engine, table: Table, first: date, last: date) -> int:
    """Rows of ``first..last`` that are not marked deleted."""
    with engine.connect() as connection:
        query = select(func.count()).where(table.c.invoice_date.between(first, last), table.c.deleted_at.is_(None))
        return int(connection.execute(query).scalar_one())
