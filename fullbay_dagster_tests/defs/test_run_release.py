"""``release_dead_runs`` and ``RunGuard`` against a real Dagster instance with the
fullbay_api pool: only a run whose process is provably gone loses its slot."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, instance_for_test

from fullbay_dagster.defs.resources import FULLBAY_POOL
from fullbay_dagster.defs.runs import HOST_TAG, PID_TAG, RunGoneError, RunGuard, release_dead_runs


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        instance.event_log_storage.set_concurrency_slots(FULLBAY_POOL, 8)
        yield instance


def _holding_run(instance: DagsterInstance, run_id: str, status: DagsterRunStatus, **tags: str) -> None:
    instance.add_run(DagsterRun(job_name="fullbay_daily_job", run_id=run_id, status=status, tags=tags))
    assert instance.event_log_storage.claim_concurrency_slot(FULLBAY_POOL, run_id, "raw_work_orders").is_claimed


def _gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def _holders(instance: DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(FULLBAY_POOL).claimed_slots}


def test_only_runs_whose_process_is_gone_lose_their_slot(instance: DagsterInstance) -> None:
    here = socket.gethostname()
    _holding_run(instance, "killed", DagsterRunStatus.STARTED, **{PID_TAG: str(_gone_pid()), HOST_TAG: here})
    _holding_run(instance, "alive", DagsterRunStatus.STARTED, **{PID_TAG: str(os.getpid()), HOST_TAG: here})
    _holding_run(instance, "elsewhere", DagsterRunStatus.STARTED, **{PID_TAG: str(_gone_pid()), HOST_TAG: "other"})
    _holding_run(instance, "ended", DagsterRunStatus.FAILURE)
    _holding_run(instance, "untagged", DagsterRunStatus.STARTED)
    instance.add_run(DagsterRun(job_name="fullbay_daily_job", run_id="me", status=DagsterRunStatus.STARTED))

    assert release_dead_runs(instance, "me", FULLBAY_POOL) == ["ended", "killed"]

    assert _holders(instance) == {"alive", "elsewhere", "untagged"}
    killed = instance.get_run_by_id("killed")
    assert killed is not None and killed.status == DagsterRunStatus.FAILURE
    me = instance.get_run_by_id("me")
    assert me is not None and me.tags[HOST_TAG] == here and me.tags[PID_TAG].isdigit()


def test_a_step_of_an_ended_run_stops_before_writing(instance: DagsterInstance) -> None:
    _holding_run(instance, "run", DagsterRunStatus.STARTED)
    guard = RunGuard(instance, "run")
    guard.check()  # running: may write
    run = instance.get_run_by_id("run")
    assert run is not None
    instance.report_run_failed(run, "its process was killed")
    with pytest.raises(RunGoneError, match="FAILURE"):
        guard.check()
