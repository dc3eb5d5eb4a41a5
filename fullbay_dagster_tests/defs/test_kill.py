"""A run killed with SIGKILL mid-load leaves no debris: the orphaned step stops before
its next write, fails its rows and the run; a rerun of the days finishes cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import Engine, func, select

from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_work_orders
from fullbay_dagster_tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
FIRST = date(2025, 3, 1)
LAST = FIRST + timedelta(days=13)  # two 7-day windows: the kill lands while the second is fetched


def _count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_running(tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    # 7 pages a window at 0.5 s each: the second window is still being fetched when the first has loaded
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=10, page_size=10, expected_ip="127.0.0.1", latency=0.5)
    with Simulator(config) as simulator:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DATABASE_URL": pg_url,
            "FULLBAY_API_KEY": TEST_KEY,
            "FULLBAY_API_BASE_URL": simulator.url,
            "FULLBAY_PUBLIC_IP": "127.0.0.1",
            "FULLBAY_START_DATE": "2025-01-01",
            "FULLBAY_MAX_IN_FLIGHT": "1",
            "FULLBAY_MIN_INTERVAL": "0",
        }
        command = [
            *(sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster"),
            *("--select", "*", "--partition-range", f"{FIRST}...{LAST}"),
        ]
        cli = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # the first window is loaded; slow Fullbay down for the second, then kill the run's process
            _wait_for(lambda: _count(pg_engine, raw_work_orders) >= 7 * 10, 240, "the first window to load")
            simulator.configure(latency=3.0)
            os.kill(cli.pid, signal.SIGKILL)
            cli.wait(10)
        finally:
            if cli.poll() is None:
                cli.kill()
        loaded_at_kill = _count(pg_engine, raw_work_orders)
        assert loaded_at_kill == 7 * 10, "the kill must land between the two windows"

        os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
        try:
            with DagsterInstance.get() as instance:
                [run] = instance.get_runs()
                _wait_for(
                    lambda: instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE,  # type: ignore[union-attr]
                    120,
                    "the orphaned step to fail the run",
                )
        finally:
            if saved is None:
                os.environ.pop("DAGSTER_HOME")
            else:
                os.environ["DAGSTER_HOME"] = saved
        # the orphaned step wrote nothing after its run died, and left no row running
        _wait_for(
            lambda: _count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0,
            30,
            "the orphaned step to fail its rows",
        )
        assert _count(pg_engine, raw_work_orders) == loaded_at_kill
        with pg_engine.connect() as connection:
            errors = set(
                connection.execute(
                    select(ingestion_metadata.c.error_message).where(ingestion_metadata.c.status == "failed")
                ).scalars()
            )
        assert errors and all("RunGoneError" in e for e in errors), errors

        simulator.configure(latency=0.0)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _count(pg_engine, raw_work_orders) == 14 * 10
    assert _count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0
    assert _count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "success") == 14
