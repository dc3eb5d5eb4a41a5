"""Run launchers for AWS: one that runs a Dagster run inside an AWS Lambda
invocation, and one that routes each run to ECS or Lambda.

An instance has exactly one run launcher, so ``RoutingRunLauncher`` is the one to
configure (see deploy/ecs/dagster.yaml): it holds an ``EcsRunLauncher`` and a
``LambdaRunLauncher`` and picks one per run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from dagster import Field, Noneable, Permissive, StringSource
from dagster import _check as check
from dagster._core.events import EngineEventData
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster_shared.serdes import serialize_value

# The handler module is standard-library only at import, so sharing its constant is free.
from fullbay_dagster.aws.lambda_handler import PAYLOAD_KEY

LAUNCHER_TAG = "fullbay/launcher"  # set on a run (or job) to choose: "ecs" or "lambda"
LAUNCHED_BY_TAG = "fullbay/launched_by"  # recorded by the router: where the run went
LAMBDA_REQUEST_ID_TAG = "fullbay/lambda_request_id"
BACKFILL_TAG = "dagster/backfill"
# Lambda stops an invocation after at most 15 minutes; past that (plus a grace
# period for queueing) a run still marked started has been killed.
LAMBDA_MAX_SECONDS = 900


class LambdaRunLauncher(RunLauncher, ConfigurableClass):
    """Launches a run by invoking a Lambda function asynchronously with the run's
    execution arguments; the function (``fullbay_dagster.aws.lambda_handler``)
    executes the run against the same instance, so it shows in the UI like any run.

    What it cannot do: terminate a run (Lambda has no way to stop an async
    invocation), or outlive Lambda's 15 minutes. ``check_run_worker_health``
    reports a run as running until the function's timeout has passed, then as
    failed, so run monitoring fails runs that Lambda killed and leaves the others.
    ``timeout_seconds`` must be the function's ``Timeout``.
    """

    def __init__(
        self,
        function_name: str,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        timeout_seconds: int = LAMBDA_MAX_SECONDS,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self.function_name = check.str_param(function_name, "function_name")
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.timeout_seconds = timeout_seconds
        self._client: Any = None
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "function_name": Field(StringSource, description="name or ARN of the run function"),
            "region_name": Field(Noneable(StringSource), is_required=False, default_value=None),
            "endpoint_url": Field(Noneable(StringSource), is_required=False, default_value=None),
            "timeout_seconds": Field(int, is_required=False, default_value=LAMBDA_MAX_SECONDS),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> LambdaRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda", region_name=self.region_name, endpoint_url=self.endpoint_url)
        return self._client

    def payload_for(self, run: DagsterRun) -> dict[str, Any]:
        args = ExecuteRunArgs(
            job_origin=check.not_none(run.job_code_origin, "a launched run has a code origin"),
            run_id=run.run_id,
            instance_ref=None,  # the function has its own DAGSTER_HOME pointing at the same storage
        )
        return {PAYLOAD_KEY: {"execute_run_args": serialize_value(args), "run_id": run.run_id}}

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        response = self.client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(self.payload_for(run)).encode(),
        )
        request_id = str(response.get("ResponseMetadata", {}).get("RequestId", "unknown"))
        self._instance.add_run_tags(run.run_id, {LAMBDA_REQUEST_ID_TAG: request_id})
        self._instance.report_engine_event(
            f"Invoked Lambda function {self.function_name} (request {request_id}).",
            run,
            EngineEventData({"Lambda function": self.function_name, "Lambda request id": request_id}),
            cls=self.__class__,
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is not None:
            self._instance.report_engine_event(
                "A run executing in AWS Lambda cannot be terminated; it stops at the function's timeout.",
                run,
                cls=self.__class__,
            )
        return False

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        record = self._instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record else None
        if started is not None and time.time() - started > self.timeout_seconds + 60:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"The run has been executing for longer than the Lambda timeout ({self.timeout_seconds}s): "
                "Lambda stopped it. Send long runs to ECS (tag fullbay/launcher=ecs).",
            )
        # Not UNKNOWN: Dagster's run monitoring fails every STARTED run whose worker is
        # neither RUNNING nor SUCCESS, and Lambda cannot tell a live invocation apart.
        return CheckRunHealthResult(WorkerStatus.RUNNING, "within the Lambda timeout (invocations cannot be inspected)")


class RoutingRunLauncher(RunLauncher, ConfigurableClass):
    """Sends each run to ECS or Lambda: the run's ``fullbay/launcher`` tag, else the
    configured default; backfill runs (which can outlast Lambda's 15 minutes)
    always go to ECS."""

    def __init__(
        self,
        default: str = "ecs",
        ecs: Mapping[str, Any] | None = None,
        lambda_: Mapping[str, Any] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        if default not in ("ecs", "lambda"):
            raise ValueError(f"RoutingRunLauncher default must be 'ecs' or 'lambda', got {default!r}")
        self._inst_data = inst_data
        self.default = default
        self._ecs_config = dict(ecs or {})
        self._lambda_config = dict(lambda_) if lambda_ else None
        self._launchers: dict[str, RunLauncher] = {}
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "default": Field(StringSource, is_required=False, default_value="ecs"),
            "ecs": Field(Permissive(), is_required=False, default_value={}, description="EcsRunLauncher config"),
            "lambda": Field(
                Noneable(Permissive()), is_required=False, default_value=None, description="LambdaRunLauncher config"
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> RoutingRunLauncher:
        values = dict(config_value)
        return cls(inst_data=inst_data, lambda_=values.pop("lambda", None), **values)

    def target_for(self, run: DagsterRun) -> str:
        if BACKFILL_TAG in run.tags:
            return "ecs"
        target = run.tags.get(LAUNCHER_TAG, self.default)
        if target not in ("ecs", "lambda"):
            raise ValueError(f"Run tag {LAUNCHER_TAG}={target!r}: use 'ecs' or 'lambda'")
        if target == "lambda" and not self._has_lambda():
            raise ValueError(
                "This instance has no Lambda run launcher configured (run_launcher.config.lambda.function_name, "
                "FULLBAY_RUN_FUNCTION, is unset or empty); use fullbay/launcher=ecs"
            )
        return target

    def _has_lambda(self) -> bool:
        """A stack deployed without the run function sets FULLBAY_RUN_FUNCTION to ''."""
        if self._lambda_config is None:
            return False
        return bool(_resolve_sources(self._lambda_config, LambdaRunLauncher.config_type()).get("function_name"))

    def launcher(self, target: str) -> RunLauncher:
        if target not in self._launchers:
            launcher: RunLauncher
            if target == "lambda":
                config = _resolve_sources(self._lambda_config or {}, LambdaRunLauncher.config_type())
                launcher = LambdaRunLauncher(**config)
            else:
                from dagster_aws.ecs import EcsRunLauncher

                launcher = EcsRunLauncher(**_resolve_sources(self._ecs_config, EcsRunLauncher.config_type()))
            launcher.register_instance(self._instance)
            self._launchers[target] = launcher
        return self._launchers[target]

    def launch_run(self, context: LaunchRunContext) -> None:
        target = self.target_for(context.dagster_run)
        self._instance.add_run_tags(context.dagster_run.run_id, {LAUNCHED_BY_TAG: target})
        self.launcher(target).launch_run(context)

    def _launcher_of(self, run: DagsterRun) -> RunLauncher:
        return self.launcher(run.tags.get(LAUNCHED_BY_TAG, self.default))

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        return bool(run and self._launcher_of(run).terminate(run_id))

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return self._launcher_of(run).check_run_worker_health(run)

    def dispose(self) -> None:
        for launcher in self._launchers.values():
            launcher.dispose()


def _resolve_sources(config: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    """Permissive sub-configs arrive with ``{env: NAME}`` unresolved: resolve them
    (and fill defaults) with Dagster's own config processing for that class."""
    from dagster._config import process_config
    from dagster._config.field import resolve_to_config_type

    result = process_config(resolve_to_config_type(schema), dict(config))
    if not result.success:
        messages = "; ".join(error.message for error in result.errors or [])
        raise ValueError(f"Invalid run launcher config: {messages}")
    return dict(result.value or {})


__all__ = ["LambdaRunLauncher", "RoutingRunLauncher"]
