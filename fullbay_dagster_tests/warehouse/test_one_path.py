"""One loading path for every endpoint: the same guarantee tests, run for invoices
and for two other endpoints (one with a line table) through the same two functions,
``raw_landing.land_raw_day`` and ``typed_build.build_day``, on both backends.

Which tables each endpoint's rows belong in is written out here, not read from the
code under test; expectations come from the input records.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import ColumnElement, Engine, Table, func, select

from fullbay_dagster.fullbay.endpoints import CUSTOMER_PAYMENTS, INVOICES, VENDOR_BILLS, Endpoint
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.fullbay.synthetic_endpoints import GENERATORS
from fullbay_dagster.warehouse.day_load import LoadCounts
from fullbay_dagster.warehouse.loader import table_checksum
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    field_issues,
    quarantine,
    raw_records,
    raw_work_orders,
    work_order_lines,
    work_orders,
)
from fullbay_dagster.warehouse.typed_build import build_day

ZONE = ZoneInfo("America/Chicago")
DAY = date(2025, 3, 12)
COUNT = 10
T1, T2, T3, T4 = (datetime(2025, 3, 13, 6, tzinfo=UTC) + timedelta(days=n) for n in range(4))
RAW_BOOKKEEPING = ("last_seen_at", "fetched_at", "last_run_id")


@dataclass(frozen=True)
class Place:
    """Where an endpoint's rows belong, and one of its money fields (path, typed column)."""

    endpoint: Endpoint
    raw: Table
    typed: Table
    lines: Table | None
    money_path: str
    money_column: str
    issue_prefix: str

    def raw_scope(self) -> list[ColumnElement[bool]]:
        return [] if self.raw is raw_work_orders else [raw_records.c.endpoint == self.endpoint.name]

    def records(self) -> list[dict[str, Any]]:
        if self.endpoint is INVOICES:
            return invoices_for_day(5, DAY, COUNT, DAY + timedelta(days=1))
        generate, _ = GENERATORS[self.endpoint.php]
        return generate(5, DAY, 200, DAY + timedelta(days=1), 3, 0.0)[:COUNT]


PLACES = [
    Place(INVOICES, raw_work_orders, work_orders, work_order_lines, "total", "total_amount", ""),
    Place(
        CUSTOMER_PAYMENTS,
        raw_records,
        endpoint_tables["customer_payments"],
        None,
        "amount",
        "amount",
        "customer_payments:",
    ),
    Place(
        VENDOR_BILLS,
        raw_records,
        endpoint_tables["vendor_bills"],
        endpoint_line_tables["vendor_bills"],
        "amount",
        "amount",
        "vendor_bills:",
    ),
]


@pytest.fixture(params=PLACES, ids=[p.endpoint.name for p in PLACES])
def place(request: pytest.FixtureRequest) -> Place:
    return request.param  # type: ignore[no-any-return]


def load(
    engine: Engine, place: Place, records: list[Any], now: datetime, fetched_at: datetime | None = None
) -> tuple[LoadCounts, LoadCounts]:
    raw = land_raw_day(engine, place.endpoint, DAY, records, run_id=now.isoformat(), now=now, fetched_at=fetched_at)
    built = build_day(engine, place.endpoint, DAY, zone=ZONE, source="test", now=now, run_id=now.isoformat())
    return raw, built


def checksums(engine: Engine, place: Place) -> dict[str, str]:
    tables = [place.typed, field_issues, *([place.lines] if place.lines is not None else [])]
    sums = {t.name: table_checksum(engine, t) for t in tables}
    sums[place.raw.name] = table_checksum(engine, place.raw, exclude=RAW_BOOKKEEPING)
    return sums


def typed_value(engine: Engine, place: Place, key: str, column: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(place.typed.c[column]).where(place.typed.c.fullbay_id == key)).scalar_one()


def test_reruns_converge_and_a_vanished_record_comes_back(engine: Engine, place: Place) -> None:
    records = place.records()
    raw, built = load(engine, place, records, T1)
    assert (raw.inserted, built.inserted) == (COUNT, COUNT)
    if place.lines is not None:
        assert built.lines > 0
    before = checksums(engine, place)

    raw, built = load(engine, place, copy.deepcopy(records), T2)
    assert (raw.unchanged, raw.inserted + raw.updated) == (COUNT, 0)
    assert (built.unchanged, built.inserted + built.updated, built.lines) == (COUNT, 0, 0)
    assert checksums(engine, place) == before

    gone = str(records[0]["primaryKey"])
    raw, built = load(engine, place, records[1:], T3)
    assert (raw.deleted, raw.unchanged, built.deleted) == (1, COUNT - 1, 1)
    assert typed_value(engine, place, gone, "deleted_at") == T3
    with engine.connect() as connection:
        query = select(place.raw.c.deleted_at).where(*place.raw_scope(), place.raw.c.fullbay_id == gone)
        assert connection.execute(query).scalar_one() == T3

    raw, built = load(engine, place, records, T4)
    assert (raw.updated, raw.unchanged, raw.deleted) == (1, COUNT - 1, 0)
    assert (built.updated, built.unchanged) == (1, COUNT - 1)
    assert typed_value(engine, place, gone, "deleted_at") is None


def test_an_older_answer_never_overwrites_a_newer_one(engine: Engine, place: Place) -> None:
    records = place.records()
    newer = copy.deepcopy(records)
    newer[0][place.money_path] = 4321.5
    key = str(records[0]["primaryKey"])
    load(engine, place, newer, T3, fetched_at=T2)

    raw, built = load(engine, place, records, T4, fetched_at=T1)  # fetched before, committed after
    assert (raw.stale, raw.updated, raw.deleted) == (COUNT, 0, 0)
    assert built.unchanged == COUNT
    assert typed_value(engine, place, key, place.money_column) == Decimal("4321.5")


def _quarantine_hash(place: Place, record: Any) -> str:
    text = json.dumps(record, ensure_ascii=True, default=repr, sort_keys=True)
    # invoices hash the bare text (as before the other endpoints came); the others include their name
    salted = text if place.endpoint is INVOICES else f"{place.endpoint.name}\n{text}"
    return hashlib.sha256(salted.encode()).hexdigest()


def test_unplaceable_records_are_quarantined_and_bad_fields_are_field_issues(engine: Engine, place: Place) -> None:
    records = place.records()
    records[1][place.money_path] = "lots"
    keyless = {k: v for k, v in records[2].items() if k != "primaryKey"}
    unplaceable = [keyless, "not an object"]
    raw, built = load(engine, place, [*records, *unplaceable], T1)
    assert (raw.quarantined, raw.inserted, built.inserted) == (2, COUNT, COUNT)
    assert built.field_issues >= 1

    # the same answer again, and record 1 changed elsewhere so that it is rebuilt
    records[1]["note"] = "seen again"
    raw, built = load(engine, place, [*records, *unplaceable], T2)
    assert (raw.quarantined, raw.updated, built.updated) == (2, 1, 1)

    bad_key = str(records[1]["primaryKey"])
    with engine.connect() as connection:
        q = quarantine.c
        rows = connection.execute(select(q.record_hash, q.endpoint, q.first_seen_at, q.last_seen_at)).all()
        issue = connection.execute(
            select(field_issues.c.first_seen_at, field_issues.c.last_seen_at).where(
                field_issues.c.fullbay_id == bad_key,
                field_issues.c.field_path == place.issue_prefix + place.money_path,
            )
        ).one()
        issues_of_day = connection.execute(
            select(func.count()).select_from(field_issues).where(field_issues.c.invoice_date == DAY)
        ).scalar_one()
    assert sorted(rows) == sorted(
        (_quarantine_hash(place, record), place.endpoint.name, T1, T2) for record in unplaceable
    )
    assert tuple(issue) == (T1, T2)  # first seen kept, last seen moved
    assert built.field_issues == issues_of_day
    assert typed_value(engine, place, bad_key, place.money_column) is None
