"""The fullbay_api pool holds whatever launched the run: the job, a plain asset
selection, a range (backfill-style) run. Three CLI runs start together against one
instance; the simulator's request log shows their Fullbay calls never overlap."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from dagster import DagsterEventType
from sqlalchemy import Engine

from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs.cli_runs import ROOT, cli_env, local_home, local_instance

DAY = date(2025, 3, 12)


@pytest.mark.slow
def test_no_two_launch_paths_call_fullbay_at_once(tmp_path: Path, pg_url: str, pg_engine: Engine) -> None:
    """``pg_engine`` has migrated the warehouse: three runs would race to create it."""
    home = local_home(tmp_path)
    with local_instance(home):  # creates Dagster's own SQLite storage once, before the runs race to
        pass
    # Slow enough that each run's Fullbay calls outlast the others' start-up (one
    # process per run starts in 3-5 s on a busy machine): the runs must meet at the pool.
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=12, page_size=5, expected_ip="127.0.0.1", latency=1.5)
    days = {
        "job": [DAY],
        "selection": [DAY + timedelta(days=1)],
        "range": [DAY + timedelta(days=2 + n) for n in range(2)],
    }
    dagster = [sys.executable, "-m", "dagster"]
    commands = {
        "job": [
            *dagster, "job", "execute", "-m", "fullbay_dagster", "-j", "fullbay_daily_job",
            "--tags", json.dumps(range_tags(DAY.isoformat(), DAY.isoformat())),
        ],
        "selection": [
            *dagster, "asset", "materialize", "-m", "fullbay_dagster", "--select", "raw_work_orders",
            "--partition", days["selection"][0].isoformat(),
        ],
        "range": [
            *dagster, "asset", "materialize", "-m", "fullbay_dagster", "--select", "*",
            "--partition-range", f"{days['range'][0]}...{days['range'][-1]}",
        ],
    }  # fmt: skip
    with Simulator(config) as simulator:
        env = cli_env(home, pg_url, simulator, FULLBAY_MIN_INTERVAL="0")
        processes = {
            name: subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for name, command in commands.items()
        }
        outputs = {name: process.communicate(timeout=280)[0] for name, process in processes.items()}
        for name, process in processes.items():
            assert process.returncode == 0, f"{name}:\n{outputs[name][-3000:]}"
        requests = simulator.requests()

    spans = {}
    for name, its_days in days.items():
        mine = [r for r in requests if date.fromisoformat(r["startDate"]) in its_days]
        assert mine, name
        spans[name] = (min(r["received_at"] for r in mine), max(r["answered_at"] for r in mine))
    ordered = sorted(spans.values())
    for (_, end), (start, _) in pairwise(ordered):
        assert end <= start, f"two runs called Fullbay at once: {spans}"

    with local_instance(home) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3
        messages = [
            record.event_log_entry.dagster_event.message or ""  # type: ignore[union-attr]
            for run in runs
            for record in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        ]
        # at least one step had to wait for the pool's single slot
        assert any("blocked by limit for pool fullbay_api" in m for m in messages), "no step waited for the pool"
