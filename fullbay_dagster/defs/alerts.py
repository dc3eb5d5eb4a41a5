"""What only runs in deployed environments: a run-failure sensor (SNS alert and
'failed' rows in ingestion_metadata for every endpoint the run loads)."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from fullbay_dagster.defs.endpoints import api_url, endpoints_of_run
from fullbay_dagster.defs.partitions import run_days, span
from fullbay_dagster.defs.resources import AlertsResource, FullbayAPIResource, WarehouseResource
from fullbay_dagster.fullbay.redaction import redact
from fullbay_dagster.warehouse.runs import RunLog


@run_failure_sensor(
    name="fullbay_run_failure_alert",
    description="Publishes failed runs to FULLBAY_ALERT_TOPIC_ARN and records them in ingestion_metadata.",
    default_status=DefaultSensorStatus.RUNNING,
)
def fullbay_run_failure_alert(
    context: RunFailureSensorContext, warehouse: WarehouseResource, alerts: AlertsResource, fullbay: FullbayAPIResource
) -> None:
    run = context.dagster_run
    days = run_days(dict(run.tags))
    step_errors = [
        event.event_specific_data.error.message.strip()  # type: ignore[union-attr]
        for event in context.get_step_failure_events()
        if getattr(event.event_specific_data, "error", None) is not None
    ]
    error = redact("; ".join(step_errors) or context.failure_event.message or "run failed")
    if days:
        urls = {e.name: api_url(fullbay, e) for e in endpoints_of_run(run.asset_selection)}
        RunLog(warehouse.get_engine(), run.run_id).fail_run(days, error, urls)
    where = span(days) if days else "no partition"
    message_id = alerts.alert(
        f"Fullbay ingestion failed: {run.job_name} {where}",
        f"Run {run.run_id} of {run.job_name} ({where}) failed.\n\n{error}",
    )
    context.log.info(f"Recorded failure of run {run.run_id} ({where}); alert {message_id or 'not sent'}")
