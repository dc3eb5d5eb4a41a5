"""The spool checks records as it writes them, so the landing neither parses nor
serialises them again. What it hands the landing must be exactly what the
landing's own check makes of the record as the API sent it (key, canonical text,
content hash), or the record itself where that check refuses it; and a day landed
from the spool must equal the day landed from the records."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from fullbay_dagster.fullbay import spool as spool_module
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.endpoints import CUSTOMER_PAYMENTS, INVOICES, Endpoint
from fullbay_dagster.fullbay.generic_records import record_check
from fullbay_dagster.fullbay.jsonio import LenientBody, parse_json
from fullbay_dagster.fullbay.records import Checked, RecordError
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_range
from fullbay_dagster.warehouse.loader import table_checksum
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.schema import quarantine, raw_records, raw_work_orders
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.fullbay.test_jsonio import JSON_VALUES, same

DAY = date(2025, 3, 12)
NOW = datetime(2025, 3, 13, 6, tzinfo=UTC)


def invoice(key: Any, **fields: Any) -> dict[str, Any]:
    return {"primaryKey": key, "invoiceDate": DAY.isoformat(), "total": "12.50", **fields}


# Bodies as the API might send them (one record each): what the landing must place,
# what it must quarantine, and text that only the standard library reads exactly.
EDGE_BODIES = [
    json.dumps(invoice(1, note="plain")),
    json.dumps(invoice("K\t1\n", note='tab\tnewline\nquote"backslash\\')),
    json.dumps(invoice(2, note="caf\u00e9 \u2028 \U0001f69a"), ensure_ascii=False),
    json.dumps(invoice(3, hours=1e-05, tiny=5e-324)),
    '{"primaryKey":4,"invoiceDate":"2025-03-12","big":123456789012345678901234567890}',
    '{"primaryKey":5,"invoiceDate":"2025-03-12","total":NaN}',
    '{"primaryKey":6,"invoiceDate":"2025-03-12","note":"\\ud800"}',
    '{"primaryKey":7,"invoiceDate":"2025-03-12","note":"nul \\u0000 here"}',
    json.dumps(invoice(8, invoiceDate="2025-03-13")),
    json.dumps(invoice(None)),
    json.dumps({"invoiceDate": DAY.isoformat()}),
    '"not an object"',
    "[1, 2]",
]


def spooled(tmp_path: Path, endpoint: Endpoint, bodies: list[str]) -> SpoolResult:
    """Each body parsed as a page would be, and spooled for DAY."""
    spool = SpoolResult(tmp_path)
    check = record_check(endpoint)
    with spool.path(DAY).open("wb") as handle:
        for body in bodies:
            record = parse_json(body.encode("utf-8", "surrogatepass"))
            strict = not isinstance(record, LenientBody)
            handle.write(spool_module._spool_line(record, DAY, strict, check))
    return spool


def expected(endpoint: Endpoint, body: str) -> Checked | Any:
    """The landing's check of the record as the standard library reads it."""
    record = json.loads(body)
    try:
        return record_check(endpoint)(record, DAY)
    except RecordError:
        return record


def assert_same_entries(spool: SpoolResult, endpoint: Endpoint, bodies: list[str]) -> None:
    entries = list(spool.checked(DAY))
    assert len(entries) == len(bodies)
    for entry, body in zip(entries, bodies, strict=True):
        want = expected(endpoint, body)
        if isinstance(want, Checked):
            assert entry == want, body
        else:
            assert not isinstance(entry, Checked) and same(entry, want), body
    assert all(same(got, json.loads(body)) for got, body in zip(spool.records(DAY), bodies, strict=True))


@pytest.mark.parametrize("endpoint", [INVOICES, CUSTOMER_PAYMENTS], ids=lambda e: e.name)
def test_the_spool_hands_the_landing_what_its_check_makes(tmp_path: Path, endpoint: Endpoint) -> None:
    spool = spooled(tmp_path, endpoint, EDGE_BODIES)
    assert_same_entries(spool, endpoint, EDGE_BODIES)
    # The edge cases exercise both kinds of line.
    assert 0 < sum(isinstance(e, Checked) for e in spool.checked(DAY)) < len(EDGE_BODIES)


KEYS = st.one_of(st.integers(min_value=-(2**40), max_value=2**40), st.text(max_size=6), st.none())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, fields=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_any_record_spools_as_the_landing_would_check_it(
    tmp_path_factory: pytest.TempPathFactory, key: Any, fields: dict[str, Any]
) -> None:
    body = json.dumps({**fields, "primaryKey": key, "invoiceDate": DAY.isoformat()}, ensure_ascii=False)
    spool = spooled(tmp_path_factory.mktemp("spool"), INVOICES, [body])
    assert_same_entries(spool, INVOICES, [body])


@pytest.mark.parametrize(
    ("endpoint", "raw"), [(INVOICES, raw_work_orders), (CUSTOMER_PAYMENTS, raw_records)], ids=lambda e: e.name
)
def test_a_day_landed_from_the_spool_equals_one_landed_from_the_records(
    tmp_path: Path, engine: Engine, endpoint: Endpoint, raw: Any
) -> None:
    spool = spooled(tmp_path, endpoint, EDGE_BODIES)
    checked = land_raw_day(engine, endpoint, DAY, spool.checked(DAY), run_id="r", now=NOW)
    first = [table_checksum(engine, table) for table in (raw, quarantine)]
    with engine.begin() as connection:
        connection.execute(raw.delete())
        connection.execute(quarantine.delete())
    parsed = land_raw_day(engine, endpoint, DAY, [json.loads(b) for b in EDGE_BODIES], run_id="r", now=NOW)
    assert [table_checksum(engine, table) for table in (raw, quarantine)] == first
    assert checked == parsed
    assert checked.quarantined > 0 and checked.inserted > 0


def test_a_window_fetched_late_in_a_long_run_is_as_fresh_as_its_fetch(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    """A long backfill's spool is made when its step starts; a window it fetches later
    must not lose, as 'stale', to an answer another run landed in between."""
    client = FullbayClient(
        FullbayClientConfig(api_key=TEST_KEY, base_url=simulator.url, public_ip="127.0.0.1", min_interval=0)
    )
    day = date(2026, 3, 20)
    (tmp_path / "backfill").mkdir()
    (tmp_path / "schedule").mkdir()
    backfill = SpoolResult(tmp_path / "backfill")  # the long step starts
    simulator.configure(as_of=day + timedelta(days=1))
    schedule = fetch_range(client, day, day, tmp_path / "schedule")  # another run's answer lands meanwhile
    land_raw_day(pg_engine, INVOICES, day, schedule.checked(day), now=NOW, fetched_at=schedule.fetched_at_of(day))
    simulator.configure(as_of=day + timedelta(days=40))  # balances paid since
    for _ in spool_module.fetch_windows(client, day, day, backfill):
        pass
    assert backfill.fetched_at_of(day) > schedule.fetched_at_of(day) > backfill.fetched_at
    counts = land_raw_day(
        pg_engine, INVOICES, day, backfill.checked(day), now=NOW, fetched_at=backfill.fetched_at_of(day)
    )
    assert counts.stale == 0 and counts.updated > 0
    with pg_engine.connect() as connection:
        stored = dict(connection.execute(select(raw_work_orders.c.fullbay_id, raw_work_orders.c.content_hash)).all())
    assert stored == {checked.key: checked.digest for checked in backfill.checked(day)}
