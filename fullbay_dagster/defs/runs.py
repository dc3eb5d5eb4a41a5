"""What the Dagster instance knows about runs, for the run log's bookkeeping."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dagster import AssetExecutionContext, AssetKey, DagsterInstance, DagsterRunStatus

ENDED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.CANCELING, DagsterRunStatus.SUCCESS}


def closes_run_log(context: AssetExecutionContext, later: Iterable[str]) -> bool:
    """Whether this step is the last to write the run log in its run: none of the
    ``later`` assets is in it. A user may materialize a raw asset alone (the UI's
    "Materialize" on it); its days must not stay ``running`` until another run
    closes them as abandoned."""
    in_run = context.job_def.asset_layer.selected_asset_keys
    return not any(AssetKey(name) in in_run for name in later)


class RunGoneError(RuntimeError):
    """The run this step belongs to has ended or its process died: stop before writing."""


def run_is_alive(instance: DagsterInstance) -> Callable[[str], bool]:
    """A run is gone when the instance does not know it or it has ended (run monitoring
    fails runs whose worker died)."""

    def alive(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.status not in ENDED

    return alive


@dataclass
class RunGuard:
    """Checked before each day's write: a step process outliving its run must not write.

    A step subprocess whose run worker was killed is re-parented, so its parent pid
    changes; a run failed or cancelled meanwhile shows in the instance."""

    instance: DagsterInstance
    run_id: str
    parent_pid: int

    @classmethod
    def for_context(cls, context: AssetExecutionContext) -> RunGuard:
        return cls(context.instance, context.run.run_id, os.getppid())

    def check(self) -> None:
        run = self.instance.get_run_by_id(self.run_id)
        if os.getppid() != self.parent_pid:
            message = f"The process of run {self.run_id} is gone; this step stops before writing."
            if run is not None and run.status not in ENDED:
                # Nobody else will: a run whose worker was killed outside a launcher
                # (the CLI, a test) is not watched by run monitoring.
                self.instance.report_run_failed(run, message)
            # The dead orchestrator held this step's fullbay_api slot; without a daemon
            # (which frees slots of ended runs) the pool would stay full.
            self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
            raise RunGoneError(message)
        if run is not None and run.status in ENDED:
            raise RunGoneError(f"Run {self.run_id} is {run.status.value}; this step stops before writing.")
