"""The names the other six endpoints' callers use for the one loading path.

``load_endpoint_raw_day`` is :func:`~fullbay_dagster.warehouse.raw_landing.land_raw_day`
and ``build_endpoint_day`` is :func:`~fullbay_dagster.warehouse.typed_build.build_day`:
the same functions invoices go through, told by the endpoint where its rows go
(``fullbay_raw_records`` and its typed and line tables; see ``targets``).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from fullbay_dagster.fullbay.endpoints import Endpoint
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.targets import landing, mapped_columns
from fullbay_dagster.warehouse.typed_build import build_day

__all__ = ["build_endpoint_day", "count_live_records", "load_endpoint_raw_day", "mapped_columns"]

load_endpoint_raw_day = land_raw_day
build_endpoint_day = build_day


def count_live_records(engine: Engine, endpoint: Endpoint, first: date, last: date) -> int:
    """Raw records of ``first..last`` not marked deleted (the API's count, for checks)."""
    target = landing(endpoint)
    table = target.table
    with engine.connect() as connection:
        query = select(func.count()).where(
            *target.scope, table.c[target.date_column].between(first, last), table.c.deleted_at.is_(None)
        )
        return int(connection.execute(query).scalar_one())
