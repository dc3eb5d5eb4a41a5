"""What the Dagster instance knows about runs, for the run log's bookkeeping."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, DagsterInstance, DagsterRun, DagsterRunStatus

ENDED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.CANCELING, DagsterRunStatus.SUCCESS}


def closes_run_log(context: AssetExecutionContext, later: Iterable[str]) -> bool:
    """Whether this step is the last to write the run log in its run: none of the
    ``later`` assets is in it. A user may materialize a raw asset alone (the UI's
    "Materialize" on it); its days must not stay ``running`` until another run
    closes them as abandoned."""
    in_run = context.job_def.asset_layer.selected_asset_keys
    return not any(AssetKey(name) in in_run for name in later)


# Where a run's own process lives: every step runs in it (one process per run).
PID_TAG, HOST_TAG = "fullbay/pid", "fullbay/host"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    stat = Path(f"/proc/{pid}/stat")
    try:  # a killed child its parent has not reaped yet is a zombie: gone all the same
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def release_dead_runs(instance: DagsterInstance, run_id: str, pool: str) -> list[str]:
    """Before this run's steps wait on ``pool``: free the slots of runs that cannot
    free them any more, and fail those runs.

    Every step runs in its run's process, so a run killed with SIGKILL (a CLI run,
    a test) keeps its slot with no process left to release it; without a daemon
    (whose run monitoring frees slots of ended runs) the next run would wait on it
    forever. A holder is dead when the instance says it ended, or when it ran on
    this host and its process is gone; runs on other hosts are left to the daemon.
    Called from resource set-up, which Dagster runs before any step claims a slot.
    """
    instance.add_run_tags(run_id, {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = {slot.run_id for slot in storage.get_concurrency_info(pool).claimed_slots if slot.run_id}
    released = []
    for holder in sorted(holders - {run_id}):
        run = instance.get_run_by_id(holder)
        if run is not None and run.status not in ENDED:
            if not _process_gone(run):
                continue
            instance.report_run_failed(
                run, f"The process of run {holder} (pid {run.tags[PID_TAG]}) is gone: it was killed."
            )
        storage.free_concurrency_slots_for_run(holder)
        released.append(holder)
    return released


class RunGoneError(RuntimeError):
    """The run this step belongs to has ended: stop before writing."""


def run_is_alive(instance: DagsterInstance) -> Callable[[str], bool | None]:
    """Whether a run may still write: not when it ended (run monitoring fails runs whose
    worker died) or ran on this host and its process is gone (a killed CLI run, with no
    daemon to notice). None for a run this instance does not know: another instance's
    (another DAGSTER_HOME, the standalone Lambda) is not ours to declare dead."""

    def alive(run_id: str) -> bool | None:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return None
        return run.status not in ENDED and not _process_gone(run)

    return alive


def _process_gone(run: DagsterRun) -> bool:
    """It ran on this host and its process is no more."""
    pid = run.tags.get(PID_TAG)
    return pid is not None and run.tags.get(HOST_TAG) == socket.gethostname() and not _process_exists(int(pid))


@dataclass
class RunGuard:
    """Checked before each day's write: a run that ended meanwhile (terminated from
    the UI, failed by run monitoring or the next run's ``release_dead_runs``) must
    not write on."""

    instance: DagsterInstance
    run_id: str

    @classmethod
    def for_context(cls, context: AssetExecutionContext) -> RunGuard:
        return cls(context.instance, context.run.run_id)

    def check(self) -> None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and run.status in ENDED:
            raise RunGoneError(f"Run {self.run_id} is {run.status.value}; this step stops before writing.")
