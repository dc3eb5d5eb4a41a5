"""What runs only when deployed: the scheduled Lambda path, CloudWatch metrics, the
run-failure sensor with its SNS alert, and the partition freshness check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    build_run_status_sensor_context,
    define_asset_job,
)
from sqlalchemy import Engine, select

from fullbay_dagster.aws.lambda_handler import handler
from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.resources import AlertsResource, WarehouseResource
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import ingestion_metadata, work_orders
from fullbay_dagster_tests.aws.conftest import REGION, put_secret
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

NAMESPACE = "Fullbay/Ingestion"


@pytest.fixture()
def deployed(aws: str, pg_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A production-like environment: key from Secrets Manager, alerts to SNS (read back
    through an SQS subscription), metrics to CloudWatch, all in moto."""
    put_secret({"fullbay_api_key": TEST_KEY, "db_password": "unused"})
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="fullbay-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = {
        "ENVIRONMENT": "prod",
        "DATABASE_URL": pg_url,
        "DB_SSLMODE": "disable",  # the local test server has no TLS; production defaults to require
        "SECRETS_MANAGER_SECRET_NAME": "fullbay/prod",
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
        "FULLBAY_ALERT_TOPIC_ARN": topic,
        "FULLBAY_FRESHNESS_HOUR": "0",
        "ALERT_QUEUE_URL": queue,
    }
    for name in ("FULLBAY_API_KEY", "DAGSTER_HOME", "SCHEDULE_EXPRESSION", "FULLBAY_REPULL_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


@pytest.fixture()
def engine(deployed: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(deployed["DATABASE_URL"])
    yield engine
    engine.dispose()


def metric_dimensions(name: str, endpoint: str = "invoices") -> set[str]:
    """The partitions ``name`` was published for, for one endpoint."""
    metrics = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace=NAMESPACE, MetricName=name)
    found = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics["Metrics"]]
    return {dims["Partition"] for dims in found if dims.get("Endpoint") == endpoint}


def alerts_received(queue_url: str) -> list[dict[str, str]]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_the_scheduled_event_loads_yesterday_and_the_repulled_days(
    deployed: dict[str, str], engine: Engine, simulator: Simulator
) -> None:
    load_definitions()  # as a fresh Lambda process would, with this test's environment
    summary = handler({"source": "aws.events", "detail-type": "Scheduled Event", "time": "2025-03-13T09:00:00Z"})
    assert summary["status"] == "success"
    assert (summary["first_day"], summary["last_day"]) == ("2025-03-10", "2025-03-12")
    per_day = summary["work_orders"]
    assert sorted(per_day) == ["2025-03-10", "2025-03-11", "2025-03-12"]
    assert {figures["dagster/row_count"] for figures in per_day.values()} == {simulator.config.invoices_per_day}
    with engine.connect() as connection:
        days = connection.execute(select(work_orders.c.invoice_date).distinct()).scalars().all()
    assert sorted(days) == [date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12)]
    assert metric_dimensions("RecordsProcessed") == {"2025-03-10", "2025-03-11", "2025-03-12"}
    assert metric_dimensions("DurationSeconds") == {"2025-03-10", "2025-03-11", "2025-03-12"}
    assert metric_dimensions("FailedRequests") == {"2025-03-10..2025-03-12"}


def test_every_endpoint_publishes_its_days(deployed: dict[str, str], engine: Engine) -> None:
    load_definitions({"FULLBAY_ENDPOINTS": "invoices,vendor_bills"})
    summary = handler({"source": "aws.events", "detail-type": "Scheduled Event", "time": "2025-03-13T09:00:00Z"})
    assert summary["status"] == "success"
    days = {"2025-03-10", "2025-03-11", "2025-03-12"}
    for endpoint in ("invoices", "vendor_bills"):
        assert metric_dimensions("RecordsProcessed", endpoint) == days, endpoint
        assert metric_dimensions("DurationSeconds", endpoint) == days, endpoint
        assert metric_dimensions("ApiRequests", endpoint) == {"2025-03-10..2025-03-12"}, endpoint


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="Unrecognised event"):
        handler({"hello": "world"})


def test_nothing_is_published_outside_deployed_environments(aws: str, pg_url: str, simulator: Simulator) -> None:
    AlertsResource(enabled=False, topic_arn="arn:aws:sns:us-east-1:123456789012:nope").put_metrics({"X": 1})
    assert boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace=NAMESPACE)["Metrics"] == []


def test_a_failed_run_is_alerted_and_recorded(deployed: dict[str, str], engine: Engine) -> None:
    """A run that died without its steps recording anything (killed, timed out): every
    endpoint it loads gets its failed rows."""
    defs = load_definitions({"FULLBAY_ENDPOINTS": "invoices,customer_payments"})
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def(JOB_NAME)
    run = instance.create_run_for_job(job, tags=range_tags("2025-03-11", "2025-03-12"))
    instance.report_run_failed(run, "Run timed out after 240 seconds")
    [failure] = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    assert failure.event_log_entry.dagster_event is not None
    sensor = defs.resolve_sensor_def("fullbay_run_failure_alert")
    resources = {name: defs.resources[name] for name in ("warehouse", "alerts", "fullbay")}
    with build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources=resources,
    ) as context:
        sensor(context.for_run_failure())  # type: ignore[call-arg]

    [alert] = alerts_received(deployed["ALERT_QUEUE_URL"])
    assert alert["Subject"] == "Fullbay ingestion failed: fullbay_daily_job 2025-03-11..2025-03-12"
    assert run.run_id in alert["Message"] and "timed out" in alert["Message"]
    assert TEST_KEY not in json.dumps(alert)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ingestion_metadata.c.endpoint,
                ingestion_metadata.c.partition_key,
                ingestion_metadata.c.status,
                ingestion_metadata.c.error_message,
            )
        ).all()
    assert sorted((r.endpoint, r.partition_key, r.status) for r in rows) == [
        (endpoint, day, "failed")
        for endpoint in ("customer_payments", "invoices")
        for day in ("2025-03-11", "2025-03-12")
    ]
    assert all("timed out" in r.error_message for r in rows)


def test_freshness_fails_until_yesterday_has_landed(deployed: dict[str, str]) -> None:
    defs = load_definitions()
    checks = [c for c in defs.asset_checks or [] if "freshness" in c.node_def.name]
    assert len(checks) == 1
    check_job = define_asset_job("freshness", selection=AssetSelection.checks(*checks))
    probe = Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=[check_job], resources=defs.resources)
    instance = DagsterInstance.ephemeral()

    def fresh() -> bool:
        result = probe.resolve_job_def("freshness").execute_in_process(instance=instance)
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation.passed

    assert not fresh()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    loaded = defs.resolve_job_def(JOB_NAME).execute_in_process(instance=instance, tags=range_tags(yesterday, yesterday))
    assert loaded.success
    assert fresh()


def test_deployed_runs_require_tls_unless_told_otherwise(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DB_SSLMODE")
    warehouse = load_definitions().resources["warehouse"]
    assert isinstance(warehouse, WarehouseResource)
    assert warehouse.db_sslmode == "require"
    monkeypatch.setenv("ENVIRONMENT", "local")
    local = load_definitions().resources["warehouse"]
    assert isinstance(local, WarehouseResource) and local.db_sslmode is None
