"""A COPY that runs in the background (``bulk.insert_new(background=True)``) keeps the
loads' promises: statements still run in order in the day's one transaction, and a
COPY the server refuses fails the day with the server's reason and commits nothing,
whether the refused batch is the first or the last, raw or lines.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from sqlalchemy import Engine, Table, func, select, text

from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse.bulk import insert_new
from fullbay_dagster.warehouse.day_load import BATCH_SIZE
from fullbay_dagster.warehouse.loader import build_work_orders_day, load_raw_day, table_checksum
from fullbay_dagster.warehouse.schema import raw_work_orders, work_order_lines, work_orders

DAY = date(2025, 3, 12)
T1 = datetime(2025, 3, 13, 6, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/Chicago")
TABLES = (raw_work_orders, work_orders, work_order_lines)


def _checksums(engine: Engine) -> dict[str, str]:
    return {table.name: table_checksum(engine, table) for table in TABLES}


def _rows(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _refuse(engine: Engine, table: str, fullbay_id: str) -> None:
    """The server refuses one row (a trigger stands in for a constraint or a full disk)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.fullbay_id = '{fullbay_id}' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql; "
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )


def _raw_rows(count: int) -> list[dict[str, Any]]:
    """Raw rows as the landing writes them (enough columns for the table's constraints)."""
    return [
        {
            "fullbay_id": str(n),
            "invoice_date": DAY,
            "raw_data": {"primaryKey": str(n)},
            "content_hash": "h",
            "first_seen_at": T1,
            "last_seen_at": T1,
            "last_changed_at": T1,
        }
        for n in range(count)
    ]


@pytest.mark.parametrize("position", [0, -1], ids=["first-batch", "last-batch"])
def test_a_refused_background_copy_fails_the_raw_load_and_commits_nothing(pg_engine: Engine, position: int) -> None:
    load_raw_day(pg_engine, DAY, invoices_for_day(5, DAY, 10, DAY), run_id="run-1", now=T1)
    before = _checksums(pg_engine)
    records = invoices_for_day(5, DAY, BATCH_SIZE + 50, DAY)  # the first 10 again, then new ones
    refused = sorted(r["primaryKey"] for r in records[10:])[position]
    _refuse(pg_engine, "fullbay_raw_work_orders", refused)

    with pytest.raises(psycopg2.Error, match="disk full"):
        load_raw_day(pg_engine, DAY, records, run_id="run-2", now=T2)

    assert _checksums(pg_engine) == before
    assert _rows(pg_engine, raw_work_orders) == 10


def test_a_refused_background_line_copy_fails_the_build_and_commits_nothing(pg_engine: Engine) -> None:
    records = invoices_for_day(5, DAY, BATCH_SIZE + 50, DAY)
    load_raw_day(pg_engine, DAY, records, now=T1)
    # Lines of the first batch are copied while the second batch is shaped.
    first = min(r["primaryKey"] for r in records)
    _refuse(pg_engine, "fullbay_work_order_lines", first)
    before = _checksums(pg_engine)

    with pytest.raises(psycopg2.Error, match="disk full"):
        build_work_orders_day(pg_engine, DAY, zone=ZONE, source="s", now=T1)

    assert _checksums(pg_engine) == before
    assert _rows(pg_engine, work_orders) == _rows(pg_engine, work_order_lines) == 0


def test_statements_after_a_background_copy_see_its_rows(pg_engine: Engine) -> None:
    rows = _raw_rows(3000)
    with pg_engine.begin() as connection:
        insert_new(connection, raw_work_orders, rows, background=True)
        seen = connection.execute(select(func.count()).select_from(raw_work_orders)).scalar_one()
        insert_new(connection, raw_work_orders, [{**rows[0], "fullbay_id": "late"}], background=True)
    assert seen == 3000
    assert _rows(pg_engine, raw_work_orders) == 3001


def test_a_failure_of_the_caller_waits_for_the_copy_then_rolls_it_back(pg_engine: Engine) -> None:
    rows = _raw_rows(3000)
    with pytest.raises(RuntimeError, match="shaping failed"), pg_engine.begin() as connection:
        insert_new(connection, raw_work_orders, rows, background=True)
        raise RuntimeError("shaping failed")
    assert _rows(pg_engine, raw_work_orders) == 0
    with pg_engine.begin() as connection:  # the pooled connection is usable again
        insert_new(connection, raw_work_orders, rows[:5], background=True)
    assert _rows(pg_engine, raw_work_orders) == 5
