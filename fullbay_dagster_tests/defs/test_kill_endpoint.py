"""A killed run of another endpoint (invoices turned off) leaves no debris either: its
orphaned step stops before its next write and fails its run-log rows; a rerun finishes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import Engine, func, select

from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_records
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs.test_kill import _count, _wait_for

ROOT = Path(__file__).resolve().parents[2]
FIRST = date(2025, 3, 1)
LAST = FIRST + timedelta(days=9)


def _days_loaded(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count(raw_records.c.record_date.distinct()))).scalar_one())


@pytest.mark.slow
def test_a_killed_endpoint_run_leaves_nothing_running(tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=10, page_size=5, expected_ip="127.0.0.1", latency=0.3)
    with Simulator(config) as simulator:
        simulator.configure(as_of=date(2025, 3, 20))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DATABASE_URL": pg_url,
            "FULLBAY_API_KEY": TEST_KEY,
            "FULLBAY_API_BASE_URL": simulator.url,
            "FULLBAY_PUBLIC_IP": "127.0.0.1",
            "FULLBAY_START_DATE": "2025-01-01",
            "FULLBAY_ENDPOINTS": "customer_payments",
            "FULLBAY_MAX_IN_FLIGHT": "1",
            "FULLBAY_MIN_INTERVAL": "0",
        }
        command = [
            *(sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster"),
            *("--select", "*", "--partition-range", f"{FIRST}...{LAST}"),
        ]
        cli = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # a few one-day windows are loaded; slow Fullbay down for the next, then kill the run's process
            _wait_for(lambda: _days_loaded(pg_engine) >= 3, 240, "the first days to load")
            simulator.configure(latency=3.0)
            os.kill(cli.pid, signal.SIGKILL)
            cli.wait(10)
        finally:
            if cli.poll() is None:
                cli.kill()

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
        _wait_for(
            lambda: _count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0,
            30,
            "the orphaned step to fail its rows",
        )
        assert _days_loaded(pg_engine) < 10, "the orphaned step stopped before loading every day"
        with pg_engine.connect() as connection:
            failed = connection.execute(
                select(ingestion_metadata.c.endpoint, ingestion_metadata.c.error_message).where(
                    ingestion_metadata.c.status == "failed"
                )
            ).all()
        assert failed and all(r.endpoint == "customer_payments" and "RunGoneError" in r.error_message for r in failed)

        simulator.configure(latency=0.0)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _days_loaded(pg_engine) == 10
    assert _count(pg_engine, ingestion_metadata, ingestion_metadata.c.status == "running") == 0
    done = ingestion_metadata.c.status == "success", ingestion_metadata.c.endpoint == "customer_payments"
    assert _count(pg_engine, ingestion_metadata, *done) == 10
