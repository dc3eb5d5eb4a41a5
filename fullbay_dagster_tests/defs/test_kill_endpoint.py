"""A killed run of another endpoint (invoices turned off) leaves no debris either: the
next run frees its pool slot and closes its run-log rows, and finishes the days."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from sqlalchemy import Engine, func, select

from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_records
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs.cli_runs import (
    ROOT,
    cli_env,
    count,
    local_home,
    materialize_range,
    only_run_and_pool_holders,
    start_then_kill,
)

FIRST = date(2025, 3, 1)
LAST = FIRST + timedelta(days=9)


def _days_loaded(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count(raw_records.c.record_date.distinct()))).scalar_one())


@pytest.mark.slow
def test_a_killed_endpoint_run_leaves_nothing_running(tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    home = local_home(tmp_path)
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=10, page_size=5, expected_ip="127.0.0.1", latency=0.3)
    with Simulator(config) as simulator:
        simulator.configure(as_of=date(2025, 3, 20))
        settings = {"FULLBAY_ENDPOINTS": "customer_payments", "FULLBAY_MAX_IN_FLIGHT": "1", "FULLBAY_MIN_INTERVAL": "0"}
        env = cli_env(home, pg_url, simulator, **settings)
        command = materialize_range(FIRST, LAST)
        # a few one-day windows are loaded; the next is still being fetched when the run is killed
        start_then_kill(command, env, simulator, lambda: _days_loaded(pg_engine) >= 3, "the first days to load")

        loaded_at_kill = _days_loaded(pg_engine)
        assert loaded_at_kill < 10, "the kill must land before every day is loaded"
        status, _, holders = only_run_and_pool_holders(home)
        assert status == DagsterRunStatus.STARTED and len(holders) == 1
        [killed] = holders

        simulator.configure(latency=0.0)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _days_loaded(pg_engine) == 10
    with pg_engine.connect() as connection:
        log = ingestion_metadata.c
        closed = connection.execute(
            select(log.endpoint, log.status, log.error_message).where(log.dagster_run_id == killed)
        ).all()
    assert len(closed) == 10
    assert set(closed) == {("customer_payments", "failed", "run ended without finishing")}
    assert count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0
    done = ingestion_metadata.c.status == "success", ingestion_metadata.c.endpoint == "customer_payments"
    assert count(pg_engine, ingestion_metadata, *done) == 10
