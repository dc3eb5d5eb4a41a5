"""The routing, ECS and Lambda run launchers against moto, and a Lambda-launched run
executed end to end by the handler against a PostgreSQL-backed instance."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.decode import cfn_yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher import LaunchRunContext, WorkerStatus
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from dagster._grpc.types import ExecuteRunArgs
from dagster_shared.serdes import deserialize_value
from sqlalchemy import func, select

from fullbay_dagster.aws.lambda_handler import handler
from fullbay_dagster.aws.launchers import (
    LAMBDA_REQUEST_ID_TAG,
    LAUNCHED_BY_TAG,
    LAUNCHER_TAG,
    LambdaRunLauncher,
    RoutingRunLauncher,
)
from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.schema import ingestion_metadata, work_orders
from fullbay_dagster_tests.aws.conftest import REGION, create_run_function, put_secret
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.defs_loader import load_definitions

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2025, 3, 12)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fullbay-dagster:test"
ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/"


def ecs_config(secret_arn: str, subnet: str, security_group: str) -> dict[str, Any]:
    return {
        "task_definition": {
            "log_group": "/fullbay/runs",
            "requires_compatibilities": ["FARGATE"],
            "execution_role_arn": ACCOUNT_ROLE + "fullbay-execution",
            "task_role_arn": ACCOUNT_ROLE + "fullbay-run",
        },
        "container_name": "run",
        "use_current_ecs_task_config": False,
        "secrets": [
            {"name": "FULLBAY_API_KEY", "valueFrom": f"{secret_arn}:fullbay_api_key::"},
            {"name": "DB_PASSWORD", "valueFrom": f"{secret_arn}:db_password::"},
        ],
        "secrets_tag": None,
        "run_resources": {"cpu": "1024", "memory": "2048"},
        "run_ecs_tags": [{"key": "application", "value": "fullbay-dagster"}],  # as deploy/ecs/dagster.yaml
        "run_task_kwargs": {
            "cluster": "fullbay",
            "launchType": "FARGATE",
            "networkConfiguration": {
                "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [security_group]},
            },
        },
    }


@pytest.fixture()
def instance(
    aws: str, tmp_path: Path, pg_url: str, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DagsterInstance]:
    """A Dagster instance stored in PostgreSQL whose launcher routes to moto's ECS and Lambda."""
    boto3.client("ecs", region_name=REGION).create_cluster(clusterName="fullbay")
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as Fargate tasks need
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fullbay-tasks", Description="run tasks", VpcId=vpc)["GroupId"]
    secret_arn = put_secret({"fullbay_api_key": TEST_KEY, "db_password": "unused-with-trust-auth"})
    create_run_function()
    storage_url = normalise_url(pg_url).render_as_string(hide_password=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {
        "storage": {"postgres": {"postgres_url": storage_url}},
        "run_launcher": {
            "module": "fullbay_dagster.aws.launchers",
            "class": "RoutingRunLauncher",
            "config": {
                "default": {"env": "FULLBAY_DEFAULT_LAUNCHER"},
                "ecs": ecs_config(secret_arn, subnet, group),
                "lambda": {"function_name": {"env": "FULLBAY_RUN_FUNCTION"}, "region_name": REGION},
            },
        },
        "telemetry": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for name, value in {
        "DAGSTER_HOME": str(home),
        "FULLBAY_DEFAULT_LAUNCHER": "lambda",
        "FULLBAY_RUN_FUNCTION": "fullbay-run",
        "DATABASE_URL": pg_url,
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
        "SECRETS_MANAGER_SECRET_NAME": "fullbay/prod",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FULLBAY_API_KEY", raising=False)
    with DagsterInstance.get() as running:
        yield running


def create_run(instance: DagsterInstance, **tags: str) -> DagsterRun:
    """A run as the webserver would create it: with the code origin of this project's job."""
    recon_job = ReconstructableRepository.for_module(
        "fullbay_dagster", "definitions", working_directory=str(ROOT), container_image=IMAGE
    ).get_reconstructable_job(JOB_NAME)
    job = load_definitions().resolve_job_def(JOB_NAME)
    remote_origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=GrpcServerCodeLocationOrigin(
                host="fullbay-code", port=4000, location_name="fullbay_dagster"
            ),
            repository_name="__repository__",
        ),
        job_name=JOB_NAME,
    )
    return instance.create_run_for_job(
        job,
        tags={**range_tags(DAY.isoformat(), DAY.isoformat()), **tags},
        job_code_origin=recon_job.get_python_origin(),
        remote_job_origin=remote_origin,
    )


def capture_lambda_payloads(launcher: RoutingRunLauncher) -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = []
    client = launcher.launcher("lambda").client  # type: ignore[attr-defined]
    client.meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: payloads.append(json.loads(params["Payload"]))
    )
    return payloads


def launch(instance: DagsterInstance, run: DagsterRun) -> DagsterRun:
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    return stored


def test_lambda_launch_invokes_the_function_asynchronously_and_records_the_request_id(
    instance: DagsterInstance,
) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, RoutingRunLauncher)
    payloads = capture_lambda_payloads(launcher)
    run = launch(instance, create_run(instance))
    assert run.tags[LAUNCHED_BY_TAG] == "lambda"
    assert run.tags[LAMBDA_REQUEST_ID_TAG] not in ("", "unknown")
    [payload] = payloads
    assert payload["dagster_run"]["run_id"] == run.run_id
    assert TEST_KEY not in json.dumps(payload)
    logs = [e.message for e in instance.all_logs(run.run_id)]
    assert any("Invoked Lambda function fullbay-run" in (m or "") for m in logs)


def test_a_lambda_launched_run_executes_in_the_handler_against_postgresql(
    instance: DagsterInstance, simulator: Simulator, pg_url: str
) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, RoutingRunLauncher)
    payloads = capture_lambda_payloads(launcher)
    run = launch(instance, create_run(instance))
    # What Lambda would do with the payload: call the handler in a fresh process's shoes.
    result = handler(payloads[0], None)
    assert result == {"run_id": run.run_id, "exit_code": 0}
    finished = instance.get_run_by_id(run.run_id)
    assert finished is not None and finished.status == DagsterRunStatus.SUCCESS
    materialized = {
        (r.asset_key.to_user_string(), r.partition_key)
        for r in instance.fetch_materializations(records_filter=AssetKey("work_orders"), limit=5).records
    }
    assert materialized == {("work_orders", DAY.isoformat())}
    engine = make_engine(pg_url)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(work_orders)).scalar_one()
        status = connection.execute(select(ingestion_metadata.c.status)).scalar_one()
    engine.dispose()
    assert rows == simulator.config.invoices_per_day and status == "success"


def moto_accepts_fargate_task_definitions(launcher: RoutingRunLauncher) -> None:
    """moto's RunTask sums container-level memory, which Fargate does not require (task-level
    memory is enough, and that is what EcsRunLauncher registers). Copy the task memory onto
    the container for moto's sake; everything else is registered exactly as sent."""

    def fill(params: dict[str, Any], **_: Any) -> None:
        for container in params.get("containerDefinitions", []):
            container.setdefault("memory", int(params["memory"]))

    ecs = launcher.launcher("ecs").ecs  # type: ignore[attr-defined]
    ecs.meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", fill)


def test_ecs_launch_runs_a_task_with_the_secrets_and_overrides(instance: DagsterInstance) -> None:
    moto_accepts_fargate_task_definitions(instance.run_launcher)  # type: ignore[arg-type]
    run = launch(instance, create_run(instance, **{LAUNCHER_TAG: "ecs"}))
    assert run.tags[LAUNCHED_BY_TAG] == "ecs"
    ecs = boto3.client("ecs", region_name=REGION)
    [task_arn] = ecs.list_tasks(cluster="fullbay")["taskArns"]
    assert run.tags["ecs/task_arn"] == task_arn
    [task] = ecs.describe_tasks(cluster="fullbay", tasks=[task_arn])["tasks"]
    [container] = task["overrides"]["containerOverrides"]
    assert container["name"] == "run"
    assert container["command"][:3] == ["dagster", "api", "execute_run"]
    assert deserialize_value(container["command"][3], ExecuteRunArgs).run_id == run.run_id
    assert task["launchType"] == "FARGATE"
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    [run_container] = definition["containerDefinitions"]
    assert run_container["image"] == IMAGE
    assert {s["name"]: s["valueFrom"].rsplit(":", 3)[1] for s in run_container["secrets"]} == {
        "FULLBAY_API_KEY": "fullbay_api_key",
        "DB_PASSWORD": "db_password",
    }
    assert definition["taskRoleArn"].endswith("role/fullbay-run")
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")


def test_backfill_runs_always_go_to_ecs(instance: DagsterInstance) -> None:
    moto_accepts_fargate_task_definitions(instance.run_launcher)  # type: ignore[arg-type]
    run = launch(instance, create_run(instance, **{LAUNCHER_TAG: "lambda", "dagster/backfill": "abcdefgh"}))
    assert run.tags[LAUNCHED_BY_TAG] == "ecs"
    assert LAMBDA_REQUEST_ID_TAG not in run.tags


def test_a_stack_without_the_run_function_refuses_lambda_runs_by_name(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLBAY_RUN_FUNCTION", "")  # what the ECS stack sets without RunFunctionArn
    with pytest.raises(ValueError, match=r"no Lambda run launcher configured.*FULLBAY_RUN_FUNCTION"):
        launch(instance, create_run(instance, **{LAUNCHER_TAG: "lambda"}))


def test_an_unknown_launcher_tag_is_refused(instance: DagsterInstance) -> None:
    with pytest.raises(ValueError, match="use 'ecs' or 'lambda'"):
        launch(instance, create_run(instance, **{LAUNCHER_TAG: "k8s"}))


def test_lambda_runs_cannot_be_terminated_and_overdue_ones_are_reported_failed(instance: DagsterInstance) -> None:
    run = launch(instance, create_run(instance))
    launcher = instance.run_launcher
    assert launcher.terminate(run.run_id) is False
    instance.handle_new_event(_run_started_event(run))
    lambda_launcher = launcher.launcher("lambda")  # type: ignore[attr-defined]
    assert isinstance(lambda_launcher, LambdaRunLauncher)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    # One pass of the daemon's run monitoring leaves a run within the timeout alone...
    monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger("monitor"))
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    lambda_launcher.timeout_seconds = -120  # as if the run had started 15 minutes ago
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and "Lambda timeout" in health.msg
    # ... and fails one that Lambda stopped.
    monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger("monitor"))
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE


def _run_started_event(run: DagsterRun) -> Any:
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.events.log import EventLogEntry

    event = DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name)
    return EventLogEntry(
        error_info=None,
        level="debug",
        user_message="",
        run_id=run.run_id,
        timestamp=time.time(),
        dagster_event=event,
    )


def test_routing_config_is_validated() -> None:
    with pytest.raises(ValueError, match="'ecs' or 'lambda'"):
        RoutingRunLauncher(default="fargate")


# --- IAM: each service's task role against the calls its process makes ---------------

# boto3 operations whose IAM action is named differently, and calls that need a second
# action (IAM's service authorization reference: RunTask and RegisterTaskDefinition
# pass the roles they name, and tagging while creating needs ecs:TagResource).
ACTION_OF_OPERATION = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
}
# Granted but not exercised against moto, each with why it is needed.
NOT_EXERCISED_HERE = {
    "ec2:DescribeNetworkInterfaces": "use_current_ecs_task_config copies the daemon task's network",
    "logs:GetLogEvents": "the failure message of a stopped run task",
    "logs:FilterLogEvents": "the failure message of a stopped run task",
    "ssmmessages:CreateControlChannel": "ECS Exec into the webserver (the SSM agent)",
    "ssmmessages:CreateDataChannel": "ECS Exec into the webserver (the SSM agent)",
    "ssmmessages:OpenControlChannel": "ECS Exec into the webserver (the SSM agent)",
    "ssmmessages:OpenDataChannel": "ECS Exec into the webserver (the SSM agent)",
}


class AwsCalls:
    """The IAM actions of the AWS calls made through boto3's default session, by which
    service's process (``acting_as``) made them."""

    def __init__(self) -> None:
        self.acting_as = ""
        self.actions: dict[str, set[str]] = {}

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        operation = f"{model.service_model.signing_name}:{model.name}"
        needed = {ACTION_OF_OPERATION.get(operation, operation)}
        if model.name in ("RunTask", "RegisterTaskDefinition"):
            roles = {**params, **params.get("overrides", {})}.keys() & {"taskRoleArn", "executionRoleArn"}
            needed |= {"iam:PassRole"} if roles else set()
            needed |= {"ecs:TagResource"} if params.get("tags") else set()
        self.actions.setdefault(self.acting_as, set()).update(needed)


def role_actions(role: str) -> set[str]:
    """Every action a role of deploy/ecs/template.yaml allows (both branches of a condition)."""
    template = cfn_yaml.load(str(ROOT / "deploy/ecs/template.yaml"))
    actions: set[str] = set()
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            for branch in statement["Fn::If"][1:] if "Fn::If" in statement else [statement]:
                if branch.get("Effect") == "Allow":
                    action = branch["Action"]
                    actions.update([action] if isinstance(action, str) else action)
    return actions


def test_each_service_role_allows_what_its_process_calls_and_nothing_unexplained(
    instance: DagsterInstance, tmp_path: Path
) -> None:
    """The webserver and the daemon have their own task roles. Their duties run here
    against moto (the daemon launches runs both ways, watches them, stops a cancelled
    backfill's run and writes a backfill's log; the webserver stops a run and reads
    the log). Every call they make must be allowed; every grant must be used here or
    say why it is not."""
    from dagster._core.storage.compute_log_manager import ComputeIOType
    from dagster_aws.s3 import S3ComputeLogManager

    boto3.client("s3", region_name=REGION).create_bucket(Bucket="fullbay-logs")
    calls = AwsCalls()
    session = boto3._get_default_session()
    session.events.register("before-parameter-build", calls)  # clients made from now on report here
    try:
        calls.acting_as = "daemon"
        moto_accepts_fargate_task_definitions(instance.run_launcher)  # type: ignore[arg-type]
        ecs_run = launch(instance, create_run(instance, **{LAUNCHER_TAG: "ecs"}))
        launch(instance, create_run(instance, **{LAUNCHER_TAG: "lambda"}))
        assert instance.run_launcher.check_run_worker_health(ecs_run).status != WorkerStatus.UNKNOWN
        cancelled = launch(instance, create_run(instance, **{"dagster/backfill": "abcdefgh"}))
        assert instance.run_launcher.terminate(cancelled.run_id) is True  # a cancelled backfill's run
        log_key = ["backfill", "abcdefgh", "20250312_090000"]
        daemon_logs = S3ComputeLogManager(bucket="fullbay-logs", prefix="logs", local_dir=str(tmp_path / "d"))
        with daemon_logs.open_log_stream(log_key, ComputeIOType.STDERR) as stream:
            assert stream is not None
            stream.write("backfill iteration\n")

        calls.acting_as = "webserver"
        assert instance.run_launcher.terminate(ecs_run.run_id) is True
        webserver_logs = S3ComputeLogManager(bucket="fullbay-logs", prefix="logs", local_dir=str(tmp_path / "w"))
        assert webserver_logs.get_log_keys_for_log_key_prefix(log_key[:2], ComputeIOType.STDERR) == [log_key]
        assert webserver_logs.get_log_data(log_key).stderr == b"backfill iteration\n"
    finally:
        session.events.unregister("before-parameter-build", calls)

    for process, role in (("daemon", "DaemonRole"), ("webserver", "WebserverRole")):
        granted = role_actions(role)
        assert calls.actions[process] - granted == set(), f"{role} lacks what the {process} calls"
        assert granted - calls.actions[process] - set(NOT_EXERCISED_HERE) == set(), f"{role} grants unused actions"
