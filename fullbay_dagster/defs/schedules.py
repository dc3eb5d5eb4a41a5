"""The job and the daily schedule: yesterday's partition plus a few re-pulled days, in one run.

Fullbay invoices change after their invoice date (payments lower the balance), so
each tick loads the newest complete day and re-pulls the ``repull_days`` before
it. A single run over the range lets the raw step fetch them in one window.
"""

from datetime import datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    define_asset_job,
    schedule,
)

from fullbay_dagster.defs.endpoints import (
    endpoint_asset_checks,
    endpoint_assets,
    invoice_assets,
    invoice_checks,
    receivables_assets,
)
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.defs.freshness import freshness_checks
from fullbay_dagster.defs.partitions import daily_partitions, range_tags
from fullbay_dagster.defs.settings import SettingsError

JOB_NAME = "fullbay_daily_job"

fullbay_daily_job = define_asset_job(
    JOB_NAME,
    # the endpoints chosen in FULLBAY_ENDPOINTS, their data checks, and the receivables;
    # not the freshness checks, which judge the clock rather than a run's days
    selection=(
        AssetSelection.assets(*invoice_assets, *endpoint_assets, *receivables_assets)
        | AssetSelection.checks(*invoice_checks, *endpoint_asset_checks)
    )
    - AssetSelection.checks(*freshness_checks),
    description="The endpoints chosen in FULLBAY_ENDPOINTS, for the selected days, into the warehouse.",
)


def recent_partitions(
    partitions_def: TimeWindowPartitionsDefinition, now: datetime | None, repull_days: int
) -> tuple[str, str] | None:
    """The newest complete day and the ``repull_days`` before it (not before the start)."""
    keys = partitions_def.get_partition_keys(current_time=now)
    if not keys:
        return None
    return keys[max(0, len(keys) - 1 - repull_days)], keys[-1]


try:

    @schedule(
        name="fullbay_daily_schedule",
        job=fullbay_daily_job,
        cron_schedule=SETTINGS.cron_schedule,
        execution_timezone=SETTINGS.timezone,
        default_status=DefaultScheduleStatus.RUNNING if SETTINGS.deployed else DefaultScheduleStatus.STOPPED,
        description=f"Loads the newest complete day and re-pulls the {SETTINGS.repull_days} before it.",
    )
    def fullbay_daily_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        span = recent_partitions(daily_partitions, context.scheduled_execution_time, SETTINGS.repull_days)
        if span is None:
            return SkipReason("No complete day since FULLBAY_START_DATE yet.")
        return RunRequest(tags=range_tags(*span))

except Exception as exc:  # Dagster's own cron parser is the judge of validity
    raise SettingsError(
        f"SCHEDULE_EXPRESSION gives an invalid cron schedule {SETTINGS.cron_schedule!r}: {exc}"
    ) from None
