"""What only runs in deployed environments: a run-failure sensor (SNS alert and a
'failed' row in ingestion_metadata) and a freshness check on yesterday's partition."""

import warnings
from datetime import date, timedelta

from dagster import (
    AssetChecksDefinition,
    AssetsDefinition,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    run_failure_sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from fullbay_dagster.defs.resources import AlertsResource, WarehouseResource
from fullbay_dagster.fullbay.client import INVOICES_ENDPOINT
from fullbay_dagster.warehouse import runs


def run_days(tags: dict[str, str]) -> list[date]:
    """The partition days a run covered, from its single-partition or range tags."""
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
        last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if PARTITION_NAME_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_NAME_TAG])]
    return []


def build_failure_sensor() -> SensorDefinition:
    @run_failure_sensor(
        name="fullbay_run_failure_alert",
        description="Publishes failed runs to FULLBAY_ALERT_TOPIC_ARN and records them in ingestion_metadata.",
        default_status=DefaultSensorStatus.RUNNING,
    )
    def fullbay_run_failure_alert(
        context: RunFailureSensorContext, warehouse: WarehouseResource, alerts: AlertsResource
    ) -> None:
        run = context.dagster_run
        days = run_days(dict(run.tags))
        error = context.failure_event.message or "run failed"
        if days:
            runs.record_run_failure(warehouse.get_engine(), run.run_id, days, error, INVOICES_ENDPOINT)
        span = f"{days[0]}..{days[-1]}" if days else "no partition"
        message_id = alerts.alert(
            f"Fullbay ingestion failed: {run.job_name} {span}",
            f"Run {run.run_id} of {run.job_name} ({span}) failed.\n\n{error}",
        )
        context.log.info(f"Recorded failure of run {run.run_id} ({span}); alert {message_id or 'not sent'}")

    return fullbay_run_failure_alert


def build_freshness(
    work_orders: AssetsDefinition, timezone: str, deadline_hour: int
) -> tuple[list[AssetChecksDefinition], SensorDefinition]:
    """Fails when the newest complete day has not landed by ``deadline_hour`` (shop time)."""
    with warnings.catch_warnings():
        # Superseded by FreshnessPolicy, which judges when an asset last materialized, not
        # whether a given day's partition exists: the partition-aware check is what we need.
        warnings.simplefilter("ignore", SupersessionWarning)
        checks = list(
            build_time_partition_freshness_checks(
                assets=[work_orders], deadline_cron=f"0 {deadline_hour} * * *", timezone=timezone
            )
        )
        sensor = build_sensor_for_freshness_checks(
            freshness_checks=checks, name="fullbay_freshness_sensor", default_status=DefaultSensorStatus.RUNNING
        )
    return checks, sensor
