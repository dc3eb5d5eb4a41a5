"""Every endpoint end to end: simulator over HTTP -> spool -> PostgreSQL, per endpoint."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.endpoints import (
    CUSTOMER_PAYMENTS,
    GENERIC_ENDPOINTS,
    INVOICES,
    Endpoint,
    selected_endpoints,
)
from fullbay_dagster.fullbay.errors import FullbayAuthError
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.warehouse.endpoint_loader import (
    build_endpoint_day,
    count_live_records,
    load_endpoint_raw_day,
)
from fullbay_dagster.warehouse.endpoint_sync import sync_endpoint, sync_endpoints
from fullbay_dagster.warehouse.loader import table_checksum
from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    field_issues,
    quarantine,
    raw_records,
    schema_fields,
    work_orders,
)
from fullbay_dagster_tests.conftest import TEST_KEY

AS_OF = date(2026, 3, 31)
START = AS_OF - timedelta(days=4)
_IDS = [e.name for e in GENERIC_ENDPOINTS]


def _client(simulator: Simulator) -> FullbayClient:
    config = FullbayClientConfig(
        api_key=TEST_KEY, base_url=simulator.url, public_ip="127.0.0.1", min_interval=0, backoff_initial=0.01
    )
    return FullbayClient(config)


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _live_typed(engine: Engine, endpoint: Endpoint) -> int:
    table = endpoint_tables[endpoint.name]
    return _count(engine, select(func.count()).where(table.c.deleted_at.is_(None)))


@pytest.mark.parametrize("endpoint", GENERIC_ENDPOINTS, ids=_IDS)
def test_endpoint_loads_counts_match_and_reruns_converge(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path, endpoint: Endpoint
) -> None:
    simulator.configure(as_of=AS_OF, type_chaos=0.25)
    client = _client(simulator)
    first = sync_endpoint(pg_engine, client, endpoint, START, AS_OF, tmp_path, run_id="r1")
    api_total = sum(first.api_counts.values())
    assert api_total > 0
    # rows equal the API's count, day by day, in the raw and the typed table
    for day, count in first.api_counts.items():
        assert count_live_records(pg_engine, endpoint, day, day) == count
        assert first.typed[day].processed == count
    assert _live_typed(pg_engine, endpoint) == api_total
    if endpoint.lines_path:
        lines = endpoint_line_tables[endpoint.name]
        assert _count(pg_engine, select(func.count()).select_from(lines)) > 0
    # type chaos: unparseable values are field issues under the endpoint's name, never lost rows
    issues = _count(pg_engine, select(func.count()).where(field_issues.c.field_path.startswith(f"{endpoint.name}:")))
    assert issues == sum(c.field_issues for c in first.typed.values())
    assert issues > 0
    # schema observation shows every field, and which typed column a mapped one fills
    with pg_engine.connect() as connection:
        observed = dict(
            connection.execute(
                select(schema_fields.c.field_path, schema_fields.c.mapped_column).where(
                    schema_fields.c.field_path.startswith(f"{endpoint.name}:")
                )
            ).all()
        )
    assert f"{endpoint.name}:primaryKey" in observed
    assert any(f"{endpoint.name}:{c}" in observed for c in endpoint.date_candidates)
    first_col = endpoint.columns[0]
    assert observed[f"{endpoint.name}:{first_col.path}"] == f"{endpoint.table}.{first_col.column}"

    raw_before = table_checksum(pg_engine, raw_records, exclude=("last_seen_at", "fetched_at", "last_run_id"))
    typed_before = table_checksum(pg_engine, endpoint_tables[endpoint.name], exclude=("updated_at", "last_run_id"))
    second = sync_endpoint(pg_engine, client, endpoint, START, AS_OF, tmp_path, run_id="r2")
    assert all(c.unchanged == c.processed and not c.inserted + c.updated for c in second.raw.values())
    assert all(c.unchanged == c.processed for c in second.typed.values())
    assert table_checksum(pg_engine, raw_records, exclude=("last_seen_at", "fetched_at", "last_run_id")) == raw_before
    assert (
        table_checksum(pg_engine, endpoint_tables[endpoint.name], exclude=("updated_at", "last_run_id")) == typed_before
    )


@pytest.mark.parametrize("endpoint", GENERIC_ENDPOINTS, ids=_IDS)
def test_deletion_revival_and_quarantine(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path, endpoint: Endpoint
) -> None:
    simulator.configure(as_of=AS_OF, invoices_per_day=30)
    spool = fetch_range(_client(simulator), AS_OF, AS_OF, tmp_path, endpoint)
    records = list(spool.records(AS_OF))
    assert len(records) >= 2
    load_endpoint_raw_day(pg_engine, endpoint, AS_OF, records)
    build_endpoint_day(pg_engine, endpoint, AS_OF)
    gone = str(records[0]["primaryKey"])

    keyless = {k: v for k, v in records[1].items() if k != "primaryKey"}
    counts = load_endpoint_raw_day(pg_engine, endpoint, AS_OF, [*records[1:], keyless, "not an object"])
    assert (counts.deleted, counts.quarantined, counts.unchanged) == (1, 2, len(records) - 1)
    assert build_endpoint_day(pg_engine, endpoint, AS_OF).deleted == 1
    typed = endpoint_tables[endpoint.name]
    with pg_engine.connect() as connection:
        reasons = connection.execute(
            select(quarantine.c.reason).where(quarantine.c.endpoint == endpoint.name).order_by(quarantine.c.reason)
        ).scalars()
        assert list(reasons) == ["no primaryKey", "not a JSON object (str)"]
        assert connection.execute(select(typed.c.deleted_at).where(typed.c.fullbay_id == gone)).scalar_one()
    assert _live_typed(pg_engine, endpoint) == len(records) - 1

    # it comes back: revived in both tables, nothing else touched
    counts = load_endpoint_raw_day(pg_engine, endpoint, AS_OF, records)
    assert (counts.updated, counts.unchanged, counts.deleted) == (1, len(records) - 1, 0)
    assert build_endpoint_day(pg_engine, endpoint, AS_OF).updated == 1
    assert _live_typed(pg_engine, endpoint) == len(records)


def test_a_confirmed_date_field_places_records_and_quarantines_misdated_ones(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    (bills,) = selected_endpoints("vendor_bills", "vendor_bills=billDate", env={})
    simulator.configure(as_of=AS_OF)
    client = _client(simulator)
    result = sync_endpoint(pg_engine, client, bills, START, AS_OF, tmp_path)
    assert {(r["startDate"], r["endDate"]) for r in simulator.requests()} == {(START.isoformat(), AS_OF.isoformat())}
    assert count_live_records(pg_engine, bills, START, AS_OF) == sum(result.api_counts.values()) > 0
    misdated = {"primaryKey": "X1", "billDate": START.isoformat()}
    counts = load_endpoint_raw_day(pg_engine, bills, AS_OF, [misdated])
    assert counts.quarantined == 1
    with pg_engine.connect() as connection:
        reason = connection.execute(select(quarantine.c.reason).where(quarantine.c.fullbay_id == "X1")).scalar_one()
    assert reason == f"billDate {START} is not the requested day {AS_OF}"


def test_refused_endpoint_is_reported_and_the_others_load(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    simulator.configure(as_of=AS_OF, refused_endpoints=["getVendorBills.php"])
    client = _client(simulator)
    chosen = selected_endpoints("invoices,vendor_bills,customer_payments", env={})
    results = sync_endpoints(pg_engine, client, chosen, AS_OF - timedelta(days=1), AS_OF, tmp_path)
    assert results["vendor_bills"].refused is not None
    assert "getVendorBills.php was refused for this key" in results["vendor_bills"].refused
    assert "FULLBAY_ENDPOINTS" in results["vendor_bills"].refused
    assert TEST_KEY not in results["vendor_bills"].refused
    # invoices take the same path into their own tables, unchanged
    assert _count(pg_engine, select(func.count()).select_from(work_orders)) == sum(
        results["invoices"].api_counts.values()
    )
    assert _live_typed(pg_engine, CUSTOMER_PAYMENTS) == sum(results["customer_payments"].api_counts.values())
    with pytest.raises(FullbayAuthError):
        sync_endpoints(pg_engine, client, [e for e in chosen if e.name == "vendor_bills"], AS_OF, AS_OF, tmp_path)
    assert INVOICES.name in results


def test_other_endpoints_paths_do_not_trip_the_invoice_schema_check(
    pg_engine: Engine, simulator: Simulator, tmp_path: Path
) -> None:
    """schema_as_known judges invoice paths against the known invoice fields; the other
    endpoints' observed paths (prefixed with their name) are recorded, not judged."""
    from fullbay_dagster.warehouse import quality

    simulator.configure(as_of=AS_OF)
    client = _client(simulator)
    try:
        sync_endpoints(pg_engine, client, selected_endpoints(env={}), AS_OF, AS_OF, tmp_path)
    finally:
        client.close()
    prefixed = _count(
        pg_engine, select(func.count()).where(schema_fields.c.field_path.startswith(f"{CUSTOMER_PAYMENTS.name}:"))
    )
    assert prefixed > 0
    drift = quality.schema_drift(pg_engine)
    assert drift.findings == [], drift.findings[:5]
    assert 0 < drift.paths_seen < _count(pg_engine, select(func.count()).select_from(schema_fields))
