"""The daily schedule: yesterday's partition plus a few re-pulled days, in one run.

Fullbay invoices change after their invoice date (payments lower the balance), so
each tick loads the newest complete day and re-pulls the ``repull_days`` before
it. A single run over the range lets the raw step fetch them in one window.
"""

from datetime import datetime

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fullbay_dagster.defs.settings import SettingsError


def recent_partitions(
    partitions_def: TimeWindowPartitionsDefinition, now: datetime | None, repull_days: int
) -> tuple[str, str] | None:
    """The newest complete day and the ``repull_days`` before it (not before the start)."""
    keys = partitions_def.get_partition_keys(current_time=now)
    if not keys:
        return None
    return keys[max(0, len(keys) - 1 - repull_days)], keys[-1]


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover a partition range (single-run backfill policy)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def build_daily_schedule(
    job: JobDefinition | UnresolvedAssetJobDefinition,
    partitions_def: TimeWindowPartitionsDefinition,
    cron_schedule: str,
    repull_days: int,
    running: bool,
) -> ScheduleDefinition:
    try:

        @schedule(
            name="fullbay_daily_schedule",
            job=job,
            cron_schedule=cron_schedule,
            execution_timezone=partitions_def.timezone,
            default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
            description=f"Loads the newest complete day and re-pulls the {repull_days} before it.",
        )
        def fullbay_daily_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
            span = recent_partitions(partitions_def, context.scheduled_execution_time, repull_days)
            if span is None:
                return SkipReason("No complete day since FULLBAY_START_DATE yet.")
            return RunRequest(tags=range_tags(*span))

    except Exception as exc:  # Dagster's own cron parser is the judge of validity
        raise SettingsError(f"SCHEDULE_EXPRESSION gives an invalid cron schedule {cron_schedule!r}: {exc}") from None
    return fullbay_daily_schedule
