"""The daily job with every endpoint, from the simulator over HTTP into PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult
from sqlalchemy import Engine, func, select

from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.endpoint_loader import count_live_records
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import endpoint_tables, receivables
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

FIRST, LAST = date(2025, 3, 11), date(2025, 3, 12)


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, simulator: Simulator, pg_url: str) -> dict[str, str]:
    values = {
        "DATABASE_URL": pg_url,
        "FULLBAY_API_KEY": TEST_KEY,
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
    }
    for name in ("DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_PORT", "DB_SSLMODE", "SCHEDULE_EXPRESSION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    simulator.configure(as_of=date(2025, 3, 20))
    return values


@pytest.fixture()
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["DATABASE_URL"])
    yield engine
    engine.dispose()


def _run(endpoints: str, **kw: object) -> ExecuteInProcessResult:
    job = load_definitions({"FULLBAY_ENDPOINTS": endpoints}).resolve_job_def(JOB_NAME)
    tags = range_tags(FIRST.isoformat(), LAST.isoformat())
    return job.execute_in_process(instance=DagsterInstance.ephemeral(), tags=tags, **kw)  # type: ignore[arg-type]


def test_all_endpoints_load_with_checks_and_receivables(engine: Engine) -> None:
    result = _run("all")
    assert result.success
    for endpoint in GENERIC_ENDPOINTS:
        raw = count_live_records(engine, endpoint, FIRST, LAST)
        typed = endpoint_tables[endpoint.name]
        with engine.connect() as connection:
            live = connection.execute(select(func.count()).where(typed.c.deleted_at.is_(None))).scalar_one()
        assert raw == live > 0, endpoint.name
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name in ("rows_match_api_count",)]
    assert {c.asset_key.to_user_string() for c in checks} >= {e.name for e in GENERIC_ENDPOINTS}
    assert all(c.passed for c in checks)
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "receivables"]
    assert {e.partition for e in events} == {FIRST.isoformat(), LAST.isoformat()}
    aging = {e.partition: e.materialization.metadata["aging"].value for e in events}
    assert all("| 90+ |" in str(text) for text in aging.values())
    with engine.connect() as connection:
        days = connection.execute(select(receivables.c.as_of).distinct()).scalars().all()
    assert sorted(days) == [FIRST, LAST]


def test_endpoints_can_be_turned_off_and_a_refused_one_fails_alone(engine: Engine, simulator: Simulator) -> None:
    defs = load_definitions({"FULLBAY_ENDPOINTS": "invoices,customer_payments"})
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "customer_payments" in keys and "vendor_bills" not in keys and "raw_vendor_bills" not in keys

    simulator.configure(refused_endpoints=["getVendorBills.php"])
    result = _run("invoices,vendor_bills,vendor_credits", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw_vendor_bills"
    message = str(failure.step_failure_data.error)  # type: ignore[union-attr]
    assert "getVendorBills.php was refused" in message and "FULLBAY_ENDPOINTS" in message
    assert TEST_KEY not in message
    bills, credits = (e for e in GENERIC_ENDPOINTS if e.name in ("vendor_bills", "vendor_credits"))
    assert count_live_records(engine, credits, FIRST, LAST) > 0
    assert count_live_records(engine, bills, FIRST, LAST) == 0
