"""Values whose shape the API decides, where only a record's key and date are strict:
a padded date places its record wherever the window is cut, an unknown field's
name of any length is observed, a customer title of any length is aged, and a
record of an endpoint without a date field follows the day that lists it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.endpoints import CUSTOMER_PAYMENTS
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.warehouse import receivables
from fullbay_dagster.warehouse.loader import build_work_orders_day, load_raw_day
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.schema import (
    endpoint_tables,
    quarantine,
    raw_records,
    raw_work_orders,
    schema_fields,
    work_orders,
)
from fullbay_dagster.warehouse.schema import receivables as receivables_table
from fullbay_dagster.warehouse.typed_build import build_day
from fullbay_dagster_tests.static_http import Answer, serving

DAY = date(2025, 3, 12)
NOW = datetime(2025, 3, 20, 6, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def one_page_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server answering every call with one page of the records put in the list."""
    records: list[dict[str, Any]] = []

    def page(_: str) -> Answer:
        envelope = {"status": "SUCCESS", "totalCount": len(records), "totalPages": 1, "resultSet": records}
        return 200, "application/json", json.dumps({**envelope, "resultCount": len(records), "currentPage": 1}).encode()

    with serving(page) as url:
        yield url, records


@pytest.mark.parametrize("spelling", [" 2025-03-12", "2025-03-12 ", "2025-03-12 00:00:00", "\t2025-03-12"])
def test_a_padded_date_lands_on_its_day_whatever_the_window(
    pg_engine: Engine, tmp_path: Path, one_page_api: tuple[str, list[dict[str, Any]]], spelling: str
) -> None:
    url, records = one_page_api
    records.append({"primaryKey": "A1", "invoiceDate": spelling, "total": 5})
    landed = []
    for window_days in (7, 1):
        client = FullbayClient(
            FullbayClientConfig(api_key="k", base_url=url, public_ip="127.0.0.1", window_days=window_days)
        )
        first = DAY if window_days == 1 else DAY - timedelta(days=2)
        directory = tmp_path / str(window_days)
        directory.mkdir()
        spool = fetch_range(client, first, first + timedelta(days=window_days - 1), directory)
        for day in sorted(spool.counts):
            load_raw_day(pg_engine, day, spool.checked(day), now=NOW)
        with pg_engine.begin() as connection:
            landed.append(
                (
                    connection.execute(select(raw_work_orders.c.fullbay_id, raw_work_orders.c.invoice_date)).all(),
                    connection.execute(select(quarantine.c.reason)).all(),
                )
            )
            connection.execute(raw_work_orders.delete())
            connection.execute(quarantine.delete())
    assert landed == [([("A1", DAY)], [])] * 2


def test_an_unknown_field_name_of_any_length_is_observed_and_the_day_builds(pg_engine: Engine) -> None:
    long_names = ["n" * 401, "n" * 400 + "x", "é" * 3000]
    invoices = [
        {"primaryKey": "G1", "invoiceDate": DAY.isoformat(), "total": 5},
        {
            "primaryKey": "L1",
            "invoiceDate": DAY.isoformat(),
            "total": 7,
            "customFields": dict.fromkeys(long_names, "x"),
        },
    ]
    load_raw_day(pg_engine, DAY, invoices, now=NOW)
    built = build_work_orders_day(pg_engine, DAY, zone=UTC_ZONE, source="test", now=NOW)
    assert (built.inserted, built.quarantined) == (2, 0)
    with pg_engine.connect() as connection:
        paths = connection.execute(select(schema_fields.c.field_path, schema_fields.c.seen_count)).all()
        assert connection.execute(select(work_orders.c.fullbay_id).order_by("fullbay_id")).scalars().all() == [
            "G1",
            "L1",
        ]
    long_paths = {path: seen for path, seen in paths if path.startswith("customFields.") and len(path) > 100}
    # Each long name is its own row, cut to the column's width, and says where it starts.
    assert len(long_paths) == 3 and set(long_paths.values()) == {1}
    assert all(len(path) == schema_fields.c.field_path.type.length for path in long_paths)
    assert sorted(path[13:20] for path in long_paths) == ["nnnnnnn", "nnnnnnn", "ééééééé"]
    # A rerun of the same day counts into the same rows.
    build_work_orders_day(pg_engine, DAY, zone=UTC_ZONE, source="test", now=NOW)
    with pg_engine.connect() as connection:
        assert len(connection.execute(select(schema_fields.c.field_path)).all()) == len(paths)


def test_customers_known_by_long_titles_are_aged_one_row_each(pg_engine: Engine) -> None:
    titles = ["Acme Freight " + "x" * 200, "Acme Freight " + "x" * 199 + "y", "Short Haul"]
    invoices = [
        {
            "primaryKey": f"C{n}",
            "invoiceDate": DAY.isoformat(),
            "dueDate": "2025-04-11",
            "total": 100,
            "balance": 100,
            "Customer": {"title": title},
        }
        for n, title in enumerate(titles)
    ]
    load_raw_day(pg_engine, DAY, invoices, now=NOW)
    build_work_orders_day(pg_engine, DAY, zone=UTC_ZONE, source="test", now=NOW)
    as_of = date(2025, 3, 20)
    receivables.store(pg_engine, as_of, receivables.compute(pg_engine, as_of))
    with pg_engine.connect() as connection:
        rows = connection.execute(select(receivables_table.c.customer_key, receivables_table.c.customer_name)).all()
    assert sorted(name for _, name in rows) == sorted(titles)
    assert len({key for key, _ in rows}) == 3
    assert all(len(key) <= receivables_table.c.customer_key.type.length for key, _ in rows)


def test_a_dateless_record_follows_the_day_that_lists_it(pg_engine: Engine) -> None:
    """customer_payments has no confirmed date field: the one-day window dates its
    records, in the raw table and in the typed one, whichever day loads first."""
    typed = endpoint_tables[CUSTOMER_PAYMENTS.name]
    first, second = DAY, DAY + timedelta(days=1)
    payment = {"primaryKey": "P1", "amount": 10}
    # (day, records) in the order one run loads them; each run a day after the last.
    runs = [
        [(first, [payment])],
        [(first, []), (second, [payment])],
        [(second, [payment]), (first, [])],
        [(first, [payment]), (second, [])],
        [(second, []), (first, [payment])],
    ]
    listed_on = [first, second, second, first, first]
    for n, (run, day) in enumerate(zip(runs, listed_on, strict=True)):
        when = NOW + timedelta(days=n)
        for load_day, records in run:
            land_raw_day(pg_engine, CUSTOMER_PAYMENTS, load_day, records, now=when, fetched_at=when)
        for load_day, _ in run:
            build_day(pg_engine, CUSTOMER_PAYMENTS, load_day, now=when)
        with pg_engine.connect() as connection:
            for table in (raw_records, typed):
                rows = connection.execute(select(table.c.fullbay_id, table.c.record_date, table.c.deleted_at)).all()
                assert rows == [("P1", day, None)], f"run {n + 1}, {table.name}"
