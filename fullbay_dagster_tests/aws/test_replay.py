"""Nothing lost on AWS: a failed invocation of the function lands in its on-failure
queue with its cause, the queue's alarm sees it, and ``fullbay-replay`` loads the
missed days (simulator and PostgreSQL) and empties the queue.

How the failure reaches the queue: moto 5.2.5 stores the function's event-invoke
config (retries, destinations) and accepts async invocations, but without Docker it
neither runs the function nor delivers to destinations. So ``invoke_and_fail_over``
accepts the async invoke in moto, runs the real handler on the same event here, and
when it raises sends what Lambda sends to the configured OnFailure destination: the
documented destination record (requestContext, requestPayload, responsePayload).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from cfnlint.decode import cfn_yaml
from dagster import DagsterInstance
from sqlalchemy import Engine, func, select

from fullbay_dagster.aws.lambda_handler import handler
from fullbay_dagster.aws.replay import QUEUE_URL_ENV, describe, main, parse_message
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.schema import work_orders
from fullbay_dagster_tests.aws.conftest import REGION, create_run_function, put_secret
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

TEMPLATE = cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "deploy/lambda/template.yaml"))
RESOURCES = TEMPLATE["Resources"]
FUNCTION = "fullbay-run"
EVENT_TIME = "2025-03-13T09:00:00Z"  # loads 2025-03-10..2025-03-12 (FULLBAY_REPULL_DAYS 2)
MISSED_DAYS = [date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12)]
WRONG_IP = "198.51.100.7"  # not the allow-listed address: Fullbay refuses the token


def scheduled_event(time: str = EVENT_TIME) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": REGION,
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/fullbay-prod-run-Daily"],
        "detail": {},
    }


@pytest.fixture()
def stack(aws: str, pg_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The Lambda stack's parts in moto, configured from deploy/lambda/template.yaml: the
    queue, the function's event-invoke config (no retries, on failure to the queue)
    and the waiting-messages alarm; the function's environment in this process."""
    queue_properties = RESOURCES["FailedInvocationsQueue"]["Properties"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(
        QueueName="fullbay-prod-lambda-FailedInvocationsQueue",
        Attributes={
            "MessageRetentionPeriod": str(queue_properties["MessageRetentionPeriod"]),
            "SqsManagedSseEnabled": str(queue_properties["SqsManagedSseEnabled"]).lower(),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_run_function(FUNCTION)
    invoke_config = RESOURCES["RunFunction"]["Properties"]["EventInvokeConfig"]
    boto3.client("lambda", region_name=REGION).put_function_event_invoke_config(
        FunctionName=FUNCTION,
        MaximumRetryAttempts=invoke_config["MaximumRetryAttempts"],
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    alarm = RESOURCES["FailedInvocationsAlarm"]["Properties"]
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=alarm["AlarmName"]["Fn::Sub"].replace("${EnvironmentName}", "prod"),
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rsplit("/", 1)[1]}],
        Statistic=alarm["Statistic"],
        Period=alarm["Period"],
        EvaluationPeriods=alarm["EvaluationPeriods"],
        Threshold=float(alarm["Threshold"]),
        ComparisonOperator=alarm["ComparisonOperator"],
        TreatMissingData=alarm["TreatMissingData"],
    )
    put_secret({"fullbay_api_key": TEST_KEY, "db_password": "unused"})
    env = {
        "ENVIRONMENT": "prod",
        "DATABASE_URL": pg_url,
        "DB_SSLMODE": "disable",  # the local test server has no TLS
        "SECRETS_MANAGER_SECRET_NAME": "fullbay/prod",
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
        QUEUE_URL_ENV: queue_url,
    }
    for name in ("FULLBAY_API_KEY", "DAGSTER_HOME", "SCHEDULE_EXPRESSION", "FULLBAY_REPULL_DAYS", "FULLBAY_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_definitions()  # as a fresh Lambda process would, with this environment (not another test's)
    yield {**env, "queue_url": queue_url, "queue_arn": queue_arn}


@pytest.fixture()
def engine(stack: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(stack["DATABASE_URL"])
    migrate.upgrade(engine)  # the tables exist even when nothing has loaded
    yield engine
    engine.dispose()


def invoke_and_fail_over(event: dict[str, Any]) -> dict[str, Any] | None:
    """An async invocation as Lambda handles it with MaximumRetryAttempts 0: one attempt;
    if it raises, the destination record goes to the OnFailure destination. Returns the
    record sent, or None when the handler succeeded."""
    lam = boto3.client("lambda", region_name=REGION)
    accepted = lam.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=json.dumps(event).encode())
    assert accepted["StatusCode"] == 202
    config = lam.get_function_event_invoke_config(FunctionName=FUNCTION)
    assert config["MaximumRetryAttempts"] == 0
    try:
        handler(event, None)
    except Exception as exc:
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": accepted["ResponseMetadata"]["RequestId"],
                "functionArn": f"{config['FunctionArn']}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            },
        }
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
        return record
    return None


def queue_depth(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def loaded_days(engine: Engine) -> list[date]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(work_orders.c.invoice_date).distinct()).scalars().all())


def fail_scheduled_load(monkeypatch: pytest.MonkeyPatch, time: str = EVENT_TIME) -> dict[str, Any]:
    """The daily tick while the function's egress IP is not Fullbay's allow-listed one."""
    monkeypatch.setenv("FULLBAY_PUBLIC_IP", WRONG_IP)
    record = invoke_and_fail_over(scheduled_event(time))
    assert record is not None, "the scheduled load should have failed"
    return record


def test_the_template_keeps_failed_invocations_without_retrying_them() -> None:
    function = RESOURCES["RunFunction"]["Properties"]
    invoke_config = function["EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == 0  # a launched run must not execute twice
    on_failure = invoke_config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}}
    queue = RESOURCES["FailedInvocationsQueue"]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] >= 4 * 86400  # a long weekend
    assert queue["DeletionPolicy"] == "Retain"
    statements = function["Policies"][-1]["Statement"]
    assert {"Sid": "FailedInvocationsToTheQueue", "Effect": "Allow", "Action": "sqs:SendMessage"}.items() <= next(
        s for s in statements if isinstance(s, dict) and s.get("Sid") == "FailedInvocationsToTheQueue"
    ).items()
    schedule = function["Events"]["Daily"]["Properties"]
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}}
    alarm = RESOURCES["FailedInvocationsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailedInvocationsQueue", "QueueName"]}}
    ]
    assert {"FailedInvocationsQueueUrl", "FailedInvocationsQueueArn", "ReplayPolicyArn"} <= set(TEMPLATE["Outputs"])


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # a timeout: Lambda reports only a message
        ({"errorMessage": "2025-03-13T09:15:00Z abc Task timed out after 900.00 seconds"}, "Task timed out"),
        # the event waited in Lambda's async queue for too long: nothing ran, no response
        (None, None),
        # the runtime crashed (out of memory, exit)
        (
            {"errorType": "Runtime.ExitError", "errorMessage": "RequestId: abc Error: Runtime exited with error"},
            "Runtime.ExitError: RequestId: abc Error: Runtime exited",
        ),
    ],
)
def test_destination_records_of_every_documented_shape_are_read(response: Any, expected: str | None) -> None:
    body = {
        "version": "1.0",
        "timestamp": "2025-03-13T09:15:00.000Z",
        "requestContext": {
            "requestId": "abc",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:fullbay-prod-run:$LATEST",
            "condition": "EventAgeExceeded" if response is None else "RetriesExhausted",
            "approximateInvokeCount": 0 if response is None else 1,
        },
        "requestPayload": scheduled_event(),
    }
    if response is not None:
        body["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        body["responsePayload"] = response
    failure = parse_message({"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(body)})
    assert failure.kind == "scheduled" and failure.event_time == EVENT_TIME
    assert failure.function_arn == body["requestContext"]["functionArn"]
    text = describe(failure)
    if expected is None:
        assert failure.error is None and "(EventAgeExceeded): no error recorded" in text
    else:
        assert failure.error is not None and expected in failure.error and "(RetriesExhausted)" in text


def test_a_failed_scheduled_load_lands_in_the_queue_with_its_cause(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = fail_scheduled_load(monkeypatch)
    assert record["responsePayload"]["errorType"] == "FullbayAuthError"
    [message] = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=stack["queue_url"])["Messages"]
    body = json.loads(message["Body"])
    assert body["requestPayload"]["time"] == EVENT_TIME
    assert body["requestContext"]["condition"] == "RetriesExhausted"
    assert "FullbayAuthError" in body["responsePayload"]["errorType"]
    assert TEST_KEY not in message["Body"]


def test_the_alarm_watches_the_queue_and_its_metric_moves(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto neither publishes SQS's metrics nor evaluates alarms. So this publishes the
    data point SQS would (the queue's visible count, read from moto's queue), checks that
    the template's alarm is the one watching that metric of that queue, and compares the
    statistic CloudWatch returns with the alarm's own threshold and operator."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    queue_name = stack["queue_url"].rsplit("/", 1)[1]
    dimensions = [{"Name": "QueueName", "Value": queue_name}]
    [alarm] = cloudwatch.describe_alarms_for_metric(
        Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible", Dimensions=dimensions
    )["MetricAlarms"]
    assert alarm["AlarmName"] == "fullbay-prod-failed-invocations-waiting"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

    def publish_and_read(at: datetime) -> float:
        visible, _ = queue_depth(stack["queue_url"])
        cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {"MetricName": alarm["MetricName"], "Dimensions": dimensions, "Value": visible, "Timestamp": at}
            ],
        )
        [point] = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName=alarm["MetricName"],
            Dimensions=dimensions,
            StartTime=at - timedelta(seconds=1),
            EndTime=at + timedelta(seconds=alarm["Period"]),
            Period=alarm["Period"],
            Statistics=[alarm["Statistic"]],
        )["Datapoints"]
        return float(point[alarm["Statistic"]])

    before = datetime.now(UTC) - timedelta(minutes=20)
    assert publish_and_read(before) == 0 < alarm["Threshold"]
    fail_scheduled_load(monkeypatch)
    after = datetime.now(UTC) - timedelta(minutes=10)
    breaching = publish_and_read(after)
    assert breaching == 1 and breaching >= alarm["Threshold"]
    # What CloudWatch then does, recorded the only way moto allows.
    cloudwatch.set_alarm_state(
        AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason=f"{breaching} >= {alarm['Threshold']}"
    )
    [state] = cloudwatch.describe_alarms(AlarmNames=[alarm["AlarmName"]], StateValue="ALARM")["MetricAlarms"]
    assert state["StateReason"] == "1.0 >= 1.0"


def test_replay_loads_the_missed_days_and_empties_the_queue(
    stack: dict[str, str],
    engine: Engine,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fail_scheduled_load(monkeypatch)
    assert loaded_days(engine) == [] and queue_depth(stack["queue_url"]) == (1, 0)

    monkeypatch.setenv("FULLBAY_PUBLIC_IP", "127.0.0.1")  # the egress IP is fixed
    assert main([]) == 0
    output = capsys.readouterr().out
    assert f"scheduled load of {EVENT_TIME} failed" in output and "FullbayAuthError" in output
    assert "days 2025-03-10..2025-03-12" in output and "replayed 1, failed again 0" in output
    assert loaded_days(engine) == MISSED_DAYS
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(work_orders)).scalar_one()
    assert rows == 3 * simulator.config.invoices_per_day
    assert queue_depth(stack["queue_url"]) == (0, 0)


def test_a_replay_that_fails_again_leaves_the_message_in_place(
    stack: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_scheduled_load(monkeypatch, "2025-03-13T09:00:00Z")
    fail_scheduled_load(monkeypatch, "2025-03-14T09:00:00Z")
    assert main([]) == 1  # still the wrong IP
    output = capsys.readouterr().out
    assert output.count("replay FAILED, message left in the queue: FullbayAuthError") == 2
    assert queue_depth(stack["queue_url"]) == (2, 0)  # both back in view, so the alarm keeps counting them
    assert loaded_days(engine) == []

    monkeypatch.setenv("FULLBAY_PUBLIC_IP", "127.0.0.1")
    assert main([]) == 0
    assert loaded_days(engine) == [*MISSED_DAYS, date(2025, 3, 13)]
    assert queue_depth(stack["queue_url"]) == (0, 0)


def test_the_dry_run_lists_and_changes_nothing(
    stack: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_scheduled_load(monkeypatch)
    monkeypatch.setenv("FULLBAY_PUBLIC_IP", "127.0.0.1")
    assert main(["--dry-run"]) == 0
    output = capsys.readouterr().out
    assert "1 failed invocation(s)" in output and "days 2025-03-10..2025-03-12" in output
    assert "replayed" not in output
    assert loaded_days(engine) == [] and queue_depth(stack["queue_url"]) == (1, 0)


def test_a_failed_launched_run_is_named_not_re_executed(
    stack: dict[str, str], engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The function could not execute a launched run (here: no DAGSTER_HOME); replay
    says which run it was and leaves the message until told to discard it."""
    run_id = str(uuid.uuid4())
    record = invoke_and_fail_over({"dagster_run": {"execute_run_args": "{}", "run_id": run_id}})
    assert record is not None and "DAGSTER_HOME is not set" in record["responsePayload"]["errorMessage"]

    assert main(["--dagster-url", "http://dagster.example:3000"]) == 1
    output = capsys.readouterr().out
    assert f"launched Dagster run {run_id} failed in Lambda" in output
    assert f"http://dagster.example:3000/runs/{run_id} -> Re-execute" in output
    assert queue_depth(stack["queue_url"]) == (1, 0) and loaded_days(engine) == []

    assert main(["--discard-launched"]) == 0
    assert "discarded (--discard-launched)" in capsys.readouterr().out
    assert queue_depth(stack["queue_url"]) == (0, 0)


def test_an_eventbridge_dead_letter_is_replayed_too(
    stack: dict[str, str], engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """EventBridge could not invoke the function at all: its dead-letter message is the
    bare event with the reason in message attributes (EventBridge's documented shape)."""
    rule = "arn:aws:events:us-east-1:123456789012:rule/fullbay-prod-lambda-RunFunctionDaily-X"
    attributes = {
        "RULE_ARN": rule,
        "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:fullbay-run",
        "ERROR_CODE": "NO_PERMISSIONS",
        "ERROR_MESSAGE": "EventBridge is not authorized to invoke the function",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=stack["queue_url"],
        MessageBody=json.dumps(scheduled_event("2025-03-20T09:00:00Z")),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    assert main([]) == 0
    output = capsys.readouterr().out
    assert "(MaximumRetryAttempts): NO_PERMISSIONS: EventBridge is not authorized" in output
    assert loaded_days(engine) == [date(2025, 3, 17), date(2025, 3, 18), date(2025, 3, 19)]
    assert queue_depth(stack["queue_url"]) == (0, 0)


def test_messages_it_cannot_place_are_left_for_a_human(
    stack: dict[str, str], engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not JSON, and a scheduled event without its time (whose days nobody can tell)."""
    sqs = boto3.client("sqs", region_name=REGION)
    timeless = {key: value for key, value in scheduled_event().items() if key != "time"}
    for body in ("not json", json.dumps(timeless)):
        sqs.send_message(QueueUrl=stack["queue_url"], MessageBody=body)
    assert main([]) == 1
    output = capsys.readouterr().out
    assert output.count("left in the queue for a human") == 2 and "left for a human 2" in output
    assert queue_depth(stack["queue_url"]) == (2, 0) and loaded_days(engine) == []


def test_missing_settings_are_named(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(QUEUE_URL_ENV)
    assert main(["--dry-run"]) == 2
    assert QUEUE_URL_ENV in capsys.readouterr().err
    monkeypatch.setenv(QUEUE_URL_ENV, stack["queue_url"])
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    assert main(["--dry-run"]) == 2
    assert "AWS_REGION" in capsys.readouterr().err
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv(QUEUE_URL_ENV, stack["queue_url"] + "-gone")
    assert main(["--dry-run"]) == 2
    assert f"check {QUEUE_URL_ENV} and AWS_REGION" in capsys.readouterr().err


def test_via_lambda_reinvokes_the_function_with_the_original_event(
    stack: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto accepts the synchronous invoke but does not run the function (no Docker) and
    answers any function name without an error, so this checks only what is sent (the
    original event, to the function that failed, synchronously) and that the message goes
    once the function answered; loading, and failing again, are tested in-process above."""
    record = fail_scheduled_load(monkeypatch)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session of this test's own, undone after it
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(dict(params))
    )
    assert main(["--via-lambda"]) == 0
    assert "loaded by Lambda function arn:aws:lambda:us-east-1:123456789012:function:fullbay-run" in (
        capsys.readouterr().out
    )
    assert [(p["FunctionName"].rsplit(":", 1)[0], p["InvocationType"]) for p in sent] == [
        (record["requestContext"]["functionArn"].rsplit(":", 1)[0], "RequestResponse")
    ]
    assert json.loads(sent[0]["Payload"]) == record["requestPayload"]
    assert queue_depth(stack["queue_url"]) == (0, 0)


@pytest.fixture()
def webserver(stack: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Dagster deployment in miniature: a webserver over this code location with its
    storage in the test's PostgreSQL database, launching runs as local processes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    storage_url = normalise_url(stack["DATABASE_URL"]).render_as_string(hide_password=False)
    config = {
        "storage": {"postgres": {"postgres_url": storage_url}},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        "telemetry": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "webserver.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port), "-m", "fullbay_dagster"],
        env={**os.environ, "DAGSTER_HOME": str(home)},  # this process keeps its ephemeral instance
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()
            time.sleep(1)
        yield url, home
    finally:
        process.terminate()
        process.wait(60)
        log.close()


@pytest.mark.slow
@pytest.mark.timeout(600)  # a webserver and its code server start first
@pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")  # gql, inside dagster-graphql
def test_replay_through_a_dagster_deployment(
    webserver: tuple[str, Path], stack: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dagster-url submits the days as one run of the daily job and deletes the message
    once Dagster reports the run succeeded."""
    url, home = webserver
    record = fail_scheduled_load(monkeypatch)
    assert main(["--dagster-url", url, "--run-timeout", "300"]) == 0
    assert loaded_days(engine) == MISSED_DAYS
    assert queue_depth(stack["queue_url"]) == (0, 0)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        [run] = instance.get_runs()
    assert run.tags["dagster/asset_partition_range_start"] == "2025-03-10"
    assert run.tags["dagster/asset_partition_range_end"] == "2025-03-12"
    assert run.tags["fullbay/replay_of"] and record["requestPayload"]["time"] == EVENT_TIME
