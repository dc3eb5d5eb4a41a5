"""A run killed with SIGKILL mid-load leaves no debris: every step ran in its one
process, so nothing writes after the kill; the next run frees its pool slot, fails
it, closes its rows and finishes the days."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from sqlalchemy import Engine, select, text

from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_work_orders, work_orders
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs.cli_runs import (
    ROOT,
    cli_env,
    count,
    local_home,
    local_instance,
    materialize_range,
    only_run_and_pool_holders,
    start_then_kill,
)

FIRST = date(2025, 3, 1)
LAST = FIRST + timedelta(days=13)  # two 7-day windows: the kill lands while the second is fetched


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_running(tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    home = local_home(tmp_path)
    # 7 pages a window at 0.5 s each: the second window is still being fetched when the first has loaded
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=10, page_size=10, expected_ip="127.0.0.1", latency=0.5)
    with Simulator(config) as simulator:
        env = cli_env(home, pg_url, simulator, FULLBAY_MAX_IN_FLIGHT="1", FULLBAY_MIN_INTERVAL="0")
        command = materialize_range(FIRST, LAST)
        # the first window is loaded; the second is still being fetched when the run is killed
        start_then_kill(
            command, env, simulator, lambda: count(pg_engine, raw_work_orders) >= 7 * 10, "the first window to load"
        )
        loaded_at_kill = count(pg_engine, raw_work_orders)
        assert loaded_at_kill == 7 * 10, "the kill must land between the two windows"

        # Every step ran in the killed process: the run still looks alive and holds the pool
        status, _, holders = only_run_and_pool_holders(home)
        assert status == DagsterRunStatus.STARTED and len(holders) == 1
        [killed] = holders
        assert count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 14

        # The next run frees the dead run's slot before it waits on the pool (else it
        # would wait forever: no daemon here), fails it, closes its rows and loads.
        simulator.configure(latency=0.0)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert f"Freed the fullbay_api slots of killed runs: {killed}" in rerun.stderr + rerun.stdout
    with local_instance(home) as instance:
        run = instance.get_run_by_id(killed)
        assert run is not None and run.status == DagsterRunStatus.FAILURE
        held = instance.event_log_storage.get_concurrency_info("fullbay_api").claimed_slots
    assert held == []
    assert _rows_of(pg_engine, killed) == [("failed", "run ended without finishing")] * 14
    assert count(pg_engine, raw_work_orders) == 14 * 10
    assert count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0
    assert count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "success") == 14


@pytest.mark.slow
def test_a_run_killed_in_its_build_step_has_its_rows_closed_by_the_next(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    """The build step holds no pool slot, so the next run cannot learn of the dead run
    from the pool: it tells by the run's process, gone from this host."""
    home = local_home(tmp_path)
    first, last = FIRST, FIRST + timedelta(days=3)
    blocked = f"fullbay:{work_orders.name}:{first + timedelta(days=2)}"
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=10, page_size=10, expected_ip="127.0.0.1")
    with Simulator(config) as simulator, pg_engine.connect() as holder:
        env = cli_env(home, pg_url, simulator, FULLBAY_MIN_INTERVAL="0")
        command = materialize_range(first, last)
        # The build waits on the third day's lock, held here: the kill lands mid-build.
        holder.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": blocked})
        start_then_kill(command, env, simulator, lambda: _waiting_on_a_lock(pg_engine), "the build to wait")
        holder.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": blocked})
        assert count(pg_engine, work_orders) == 2 * 10
        [killed] = {run for (run,) in _running_rows(pg_engine)}
        simulator.configure(latency=0.0)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _rows_of(pg_engine, killed) == [("failed", "run ended without finishing")] * 4
    assert _running_rows(pg_engine) == []
    assert count(pg_engine, work_orders) == 4 * 10


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
        )


def _running_rows(engine: Engine) -> list[tuple[str]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(ingestion_metadata.c.dagster_run_id).where(ingestion_metadata.c.status == "running")
            )
        ]


def _rows_of(engine: Engine, run_id: str) -> list[tuple[str, str | None]]:
    """(status, error) of each run-log row of ``run_id``."""
    with engine.connect() as connection:
        return [
            (row.status, row.error_message)
            for row in connection.execute(
                select(ingestion_metadata.c.status, ingestion_metadata.c.error_message).where(
                    ingestion_metadata.c.dagster_run_id == run_id
                )
            )
        ]
