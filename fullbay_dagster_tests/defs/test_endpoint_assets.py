"""The daily job with every endpoint, from the simulator over HTTP into PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult
from sqlalchemy import Engine, func, select

from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.endpoint_loader import count_live_records
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    ingestion_metadata,
    receivables,
    work_orders,
)
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

FIRST, LAST = date(2025, 3, 11), date(2025, 3, 12)


@pytest.fixture()
def env(project_env: dict[str, str], simulator: Simulator) -> dict[str, str]:
    simulator.configure(as_of=date(2025, 3, 20))
    return project_env


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
    # every endpoint's checks, one result per day each, all passing
    checks = {
        (c.asset_key.to_user_string(), c.check_name, c.partition): c.passed
        for c in result.get_asset_check_evaluations()
        if c.asset_key.to_user_string() in {e.name for e in GENERIC_ENDPOINTS}
    }
    names = ("keys_unique", "rows_match_api_count", "no_quarantined_records")
    days = (FIRST.isoformat(), LAST.isoformat())
    assert set(checks) == {(e.name, n, d) for e in GENERIC_ENDPOINTS for n in names for d in days}
    assert all(checks.values())
    # the run log: one finished row per endpoint and day, invoices' rows as they always were
    with engine.connect() as connection:
        logged = connection.execute(select(ingestion_metadata)).mappings().all()
    assert {(r["endpoint"], r["partition_key"], r["status"]) for r in logged} == {
        (name, day, "success") for name in ("invoices", *(e.name for e in GENERIC_ENDPOINTS)) for day in days
    }
    assert len(logged) == 7 * 2
    for row in logged:
        if row["endpoint"] == "invoices":
            assert row["execution_id"] == f"{result.run_id}:{row['partition_key']}"
            continue
        assert row["execution_id"] == f"{result.run_id}:{row['endpoint']}:{row['partition_key']}"
        assert row["api_endpoint"].endswith(next(e.php for e in GENERIC_ENDPOINTS if e.name == row["endpoint"]))
        typed = endpoint_tables[row["endpoint"]]
        day = date.fromisoformat(row["partition_key"])
        with engine.connect() as connection:
            live = connection.execute(
                select(func.count()).where(typed.c.record_date == day, typed.c.deleted_at.is_(None))
            ).scalar_one()
        assert row["api_record_count"] - row["records_quarantined"] == live > 0
        assert row["records_inserted"] == live and row["end_time"] is not None and row["error_message"] is None
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
    with engine.connect() as connection:
        logged = connection.execute(
            select(ingestion_metadata.c.endpoint, ingestion_metadata.c.status, ingestion_metadata.c.error_message)
        ).all()
    by_endpoint = {(r.endpoint, r.status) for r in logged}
    assert by_endpoint == {("invoices", "success"), ("vendor_credits", "success"), ("vendor_bills", "failed")}
    refused = [r.error_message for r in logged if r.endpoint == "vendor_bills"]
    assert len(refused) == 2 and all("getVendorBills.php was refused" in m for m in refused)
    assert not any(TEST_KEY in (r.error_message or "") for r in logged)


def test_customer_payments_alone_without_invoices(engine: Engine) -> None:
    result = _run("customer_payments")
    assert result.success
    steps = {e.step_key for e in result.all_events if e.is_step_success}
    assert steps == {"raw_customer_payments", "normalise_customer_payments", "customer_payments_checks"}
    typed = endpoint_tables["customer_payments"]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(typed)).scalar_one() > 0
        assert connection.execute(select(func.count()).select_from(work_orders)).scalar_one() == 0
        logged = connection.execute(select(ingestion_metadata.c.endpoint, ingestion_metadata.c.status)).all()
    assert sorted(logged) == [("customer_payments", "success")] * 2


def test_an_endpoints_raw_asset_alone_closes_its_run_log_rows(engine: Engine) -> None:
    result = _run("customer_payments", asset_selection=[AssetKey("raw_customer_payments")])
    assert result.success
    with engine.connect() as connection:
        logged = connection.execute(select(ingestion_metadata.c.status, ingestion_metadata.c.end_time)).all()
    assert len(logged) == 2 and all(status == "success" and end is not None for status, end in logged)


def test_each_day_shows_what_its_tables_hold_on_a_rerun_too(engine: Engine) -> None:
    # A rerun rewrites nothing; the day's pages must still show the rows the day holds.
    assert _run("vendor_bills").success
    rerun = _run("vendor_bills")
    assert rerun.success
    shown = {
        (e.asset_key.to_user_string(), e.partition): e.materialization.metadata["dagster/row_count"].value
        for e in rerun.get_asset_materialization_events()
        if e.partition is not None and "dagster/row_count" in e.materialization.metadata
    }
    typed, lines = endpoint_tables["vendor_bills"], endpoint_line_tables["vendor_bills"]
    for day in (FIRST, LAST):
        with engine.connect() as connection:
            live = connection.execute(
                select(func.count()).where(typed.c.record_date == day, typed.c.deleted_at.is_(None))
            ).scalar_one()
            line_rows = connection.execute(select(func.count()).where(lines.c.record_date == day)).scalar_one()
        assert shown[("vendor_bills", day.isoformat())] == live > 0
        assert shown[("vendor_bills_lines", day.isoformat())] == line_rows > 0


def test_a_backfill_of_earlier_days_names_the_later_agings_it_leaves_stale(engine: Engine) -> None:
    """A day's aging counts every earlier day's invoices: the receivables step of a run of
    earlier days says which later days, aged before, to materialize again."""
    defs = load_definitions({"FULLBAY_ENDPOINTS": "invoices,customer_payments"})
    job = defs.resolve_job_def(JOB_NAME)
    instance = DagsterInstance.ephemeral()
    later = job.execute_in_process(instance=instance, tags=range_tags(LAST.isoformat(), LAST.isoformat()))
    earlier = job.execute_in_process(instance=instance, tags=range_tags(FIRST.isoformat(), FIRST.isoformat()))
    assert later.success and earlier.success

    def to_refresh(result: ExecuteInProcessResult) -> object:
        [event] = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "receivables"
            and "run_later_days_to_refresh" in e.materialization.metadata
        ]
        return event.materialization.metadata["run_later_days_to_refresh"].value

    assert (to_refresh(later), to_refresh(earlier)) == (0, 1)
