"""The AWS Lambda entry point, serving two callers.

1. ``LambdaRunLauncher`` invokes it with ``{"dagster_run": {"execute_run_args": ...}}``:
   it executes that Dagster run against the instance in ``DAGSTER_HOME`` (the same
   PostgreSQL storage as the rest of the deployment), exactly as an ECS run task
   does, with ``dagster api execute_run``.
2. An EventBridge schedule invokes it with a scheduled event (the original design,
   no Dagster deployment needed): it materializes the newest complete day plus the
   re-pulled days before it in-process and returns a summary.

Module level imports only the standard library: Dagster is imported by the path
that needs it, which keeps the cold start of the function lean.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import JobDefinition

PAYLOAD_KEY = "dagster_run"  # what LambdaRunLauncher puts the run in
log = logging.getLogger(__name__)


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    if isinstance(event, dict) and PAYLOAD_KEY in event:
        return execute_launched_run(event[PAYLOAD_KEY])
    if is_scheduled_event(event):
        return materialize_recent_days(event.get("time"))
    raise ValueError(
        "Unrecognised event: expected a Dagster run launch ({'dagster_run': ...}) or an EventBridge scheduled event"
    )


def is_scheduled_event(event: Any) -> bool:
    """An EventBridge scheduled event (``fullbay-replay`` tells them apart the same way)."""
    return isinstance(event, dict) and (
        event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event"
    )


def execute_launched_run(payload: dict[str, Any]) -> dict[str, Any]:
    from dagster._grpc.types import ExecuteRunArgs
    from dagster_shared.serdes import deserialize_value

    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("DAGSTER_HOME is not set: the run function needs the deployment's dagster.yaml")
    _export_storage_password()
    args = deserialize_value(payload["execute_run_args"], ExecuteRunArgs)
    command = args.get_command_args()  # ["dagster", "api", "execute_run", "<json>"]
    log.info("Executing Dagster run %s", args.run_id)
    completed = subprocess.run([sys.executable, "-m", "dagster", *command[1:]], check=False)  # noqa: S603
    # The run's own events record success or failure in the instance; a non-zero exit
    # means the run worker itself crashed, which Lambda should count as an error.
    if completed.returncode != 0:
        raise RuntimeError(f"dagster api execute_run exited with {completed.returncode} for run {args.run_id}")
    return {"run_id": args.run_id, "exit_code": completed.returncode}


def materialize_recent_days(event_time: str | None = None) -> dict[str, Any]:
    job, repull_days = daily_job()
    span = days_for_event_time(job, repull_days, event_time)
    if span is None:
        return {"status": "skipped", "reason": "no complete day since FULLBAY_START_DATE"}
    return materialize_days(job, *span)


def daily_job() -> tuple[JobDefinition, int]:
    """The partitioned daily job of this environment's definitions, and its re-pull days."""
    from fullbay_dagster.defs.definitions import JOB_NAME, defs
    from fullbay_dagster.defs.environment import SETTINGS

    return defs.resolve_job_def(JOB_NAME), SETTINGS.repull_days


def days_for_event_time(job: JobDefinition, repull_days: int, event_time: str | None) -> tuple[str, str] | None:
    """The first and last day a scheduled event at ``event_time`` loads: the newest
    complete day then and the re-pulled days before it (``fullbay-replay`` relies on
    this to re-drive exactly what a failed invocation missed)."""
    from fullbay_dagster.defs.partitions import daily_partitions
    from fullbay_dagster.defs.schedules import recent_partitions

    return recent_partitions(daily_partitions, _parse_event_time(event_time), repull_days)


def materialize_days(job: JobDefinition, first: str, last: str) -> dict[str, Any]:
    """One in-process run of ``job`` over the days ``first..last``; raises if it fails."""
    from dagster import DagsterInstance

    from fullbay_dagster.defs.partitions import range_tags

    if os.environ.get("DAGSTER_HOME"):
        _export_storage_password()
        instance = DagsterInstance.get()
    else:  # the original design: no Dagster deployment, nothing to record runs in
        instance = DagsterInstance.ephemeral()
    with instance:
        result = job.execute_in_process(instance=instance, tags=range_tags(first, last))
    summary: dict[str, Any] = {"status": "success", "run_id": result.run_id, "first_day": first, "last_day": last}
    # asset -> day -> that day's own figures (each partition's materialization carries them)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization is None or materialization.partition is None:
            continue
        summary.setdefault(materialization.asset_key.to_user_string(), {})[materialization.partition] = {
            key: value.value
            for key, value in materialization.metadata.items()
            if isinstance(value.value, (int, float, str))
        }
    return summary


_STORAGE_PASSWORD_SET_HERE = False


def _export_storage_password() -> None:
    """dagster.yaml reads DAGSTER_PG_PASSWORD from the environment; a Lambda function
    should not carry it in plain configuration, so take it from the secret instead, on
    every invocation: a warm container outlives a rotation (the secret is cached for
    minutes, not for the container's life). A value the function was configured with
    is left alone."""
    global _STORAGE_PASSWORD_SET_HERE
    secret_name = os.environ.get("SECRETS_MANAGER_SECRET_NAME")
    if not secret_name or (os.environ.get("DAGSTER_PG_PASSWORD") and not _STORAGE_PASSWORD_SET_HERE):
        return
    from fullbay_dagster.aws.secrets import DB_PASSWORD_FIELD, provider_for

    secret = provider_for(secret_name, os.environ.get("AWS_REGION"))
    os.environ["DAGSTER_PG_PASSWORD"] = secret.get(DB_PASSWORD_FIELD)
    _STORAGE_PASSWORD_SET_HERE = True


def _parse_event_time(value: str | None) -> datetime:
    if value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.now(UTC)
