"""Smoke tests of the two built images, run inside them with ``buildah run``.

Around them, on this machine: the Fullbay simulator, moto's server (S3, Secrets
Manager, CloudWatch, SNS, Lambda) and a PostgreSQL cluster of our own that, like
RDS with ``rds.force_ssl``, accepts only TLS and password logins (the production
dagster.yaml says ``sslmode: require``). Every container gets the environment
the CloudFormation templates give it (evaluated from deploy/*/template.yaml, see
``cfn.py``); only what points at the local doubles differs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from cfn import Stack
from sqlalchemy import create_engine, text

from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig

ROOT = Path(__file__).resolve().parents[1]
BUILDAH = ("buildah", "--storage-driver", "vfs")
REGION = "us-east-1"
ACCOUNT = "123456789012"
PG_HOST = "127.0.0.2"  # our own cluster, beside the host's server on 127.0.0.1:5432
SERVICE_HOST = "127.0.0.3"  # code server and webserver, away from anything on 127.0.0.1
DAY = "2025-03-12"
LAMBDA_USER = "993:990"  # Lambda runs images as a non-root user without a passwd entry
INVOICES_PER_DAY = 12


class CommandFailed(Exception):
    """A command inside a container exited non-zero (its output is in the message)."""


def log(message: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class Secrets:
    """Made up per run; scanned for in every layer of both images."""

    api_key: str
    db_password: str

    @classmethod
    def generate(cls) -> Secrets:
        # RDS master passwords may hold '#', '%' and '!' (not '/', '@', '"'): use them.
        return cls(f"ci-key-{secrets.token_hex(16)}", f"ci#pw%{secrets.token_hex(12)}!")

    def needles(self) -> dict[str, bytes]:
        return {"the test API key": self.api_key.encode(), "the test DB password": self.db_password.encode()}


# -- doubles on the host -------------------------------------------------------------


@contextmanager
def tls_postgres(password: str) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on PG_HOST:5432 that accepts only TLS and
    passwords; yields the admin URL. Runs as the `postgres` system user."""
    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    folder = Path(tempfile.mkdtemp(prefix="fullbay-smoke-pg-"))
    data = folder / "data"
    shutil.chown(folder, "postgres", "postgres")
    pwfile = folder / "pw"
    pwfile.write_text(password)
    shutil.chown(pwfile, "postgres")
    as_postgres = ("runuser", "-u", "postgres", "--")
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
         "-A", "scram-sha-256", "--no-sync"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", f"/CN={PG_HOST}",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("server.key", "server.crt"):
        shutil.chown(data / name, "postgres", "postgres")
    (data / "server.key").chmod(0o600)
    (data / "pg_hba.conf").write_text("local all postgres peer\nhostssl all all 127.0.0.0/8 scram-sha-256\n")
    options = f"-c listen_addresses={PG_HOST} -c port=5432 -c unix_socket_directories={folder} -c ssl=on -c fsync=off"
    subprocess.run(
        [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
         "-w", "start"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg2://postgres:{_quote(password)}@{PG_HOST}:5432/postgres?sslmode=require"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@contextmanager
def moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    config = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=b'{"lambda": {"use_docker": false}}', method="POST"
    )
    urllib.request.urlopen(config, timeout=10)
    try:
        yield endpoint
    finally:
        server.stop()


FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class World:
    """Everything the containers talk to, and how the templates see it."""

    endpoint: str
    admin_url: str
    simulator: Simulator
    secret_arn: str
    bucket: str
    topic_arn: str
    function_arn: str
    secrets: Secrets

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's
        )

    def fake_aws_env(self) -> dict[str, str]:
        """What AWS gives every ECS task and Lambda function besides the template's
        variables (the region; credentials of the task or function role), with the
        endpoint pointed at moto."""
        return {**FAKE_AWS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def database(self, name: str) -> Any:
        url = self.admin_url.replace("/postgres?", f"/{name}?")
        return create_engine(url, isolation_level="AUTOCOMMIT")


def prepare_world(stack: ExitStack, found: Secrets) -> World:
    admin_password = secrets.token_hex(16)
    admin_url = stack.enter_context(tls_postgres(admin_password))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE ROLE fullbay LOGIN PASSWORD :pw"), {"pw": found.db_password})
        connection.execute(text("CREATE DATABASE fullbay OWNER fullbay"))
    admin.dispose()
    endpoint = stack.enter_context(moto())
    simulator = stack.enter_context(
        Simulator(SimulatorConfig(api_key=found.api_key, invoices_per_day=INVOICES_PER_DAY, expected_ip="127.0.0.1"))
    )
    world = World(endpoint, admin_url, simulator, "", "fullbay-prod-compute-logs", "", "", found)
    secret = {"fullbay_api_key": found.api_key, "db_password": found.db_password}
    world.secret_arn = world.aws("secretsmanager").create_secret(Name="fullbay/prod", SecretString=json.dumps(secret))[
        "ARN"
    ]
    world.aws("s3").create_bucket(Bucket=world.bucket)
    world.topic_arn = world.aws("sns").create_topic(Name="fullbay-prod-alerts")["TopicArn"]
    world.function_arn = _create_run_function(world)
    return world


def _create_run_function(world: World) -> str:
    """moto's Lambda, without Docker: accepts invocations (what the launcher does), never runs them."""
    import io
    import zipfile

    role = world.aws("iam").create_role(RoleName="fullbay-prod-run", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handler(event, context): pass\n")
    return str(
        world.aws("lambda").create_function(
            FunctionName="fullbay-prod-run",
            Runtime="python3.11",
            Role=role,
            Handler="fullbay_dagster.aws.lambda_handler.handler",
            Code={"ZipFile": archive.getvalue()},
        )["FunctionArn"]
    )


# -- the environment the templates set ------------------------------------------------------


def ecs_stack(world: World, image: str) -> Stack:
    return Stack(
        ROOT / "deploy/ecs/template.yaml",
        parameters={
            "EnvironmentName": "prod",
            "ImageUri": image,
            "SecretArn": world.secret_arn,
            "VpcId": "vpc-0local",
            "PrivateSubnet1Id": "subnet-0a",
            "PrivateSubnet2Id": "subnet-0b",
            "FullbayPublicIp": "127.0.0.1",  # what the simulator checks tokens against
            "DbHost": PG_HOST,
            "FullbayApiBaseUrl": world.simulator.url,
            "FullbayStartDate": "2025-01-01",
            "RunFunctionArn": world.function_arn,
        },
        resources={
            "AlertTopic": world.topic_arn,
            "ComputeLogBucket": world.bucket,
            "RunLogGroup": "/fullbay/prod/dagster-runs",
            "RunTaskRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/fullbay-prod-run-task",
            "TaskExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/fullbay-prod-execution",
        },
        region=REGION,
        account=ACCOUNT,
    )


def lambda_stack(world: World, image: str) -> Stack:
    return Stack(
        ROOT / "deploy/lambda/template.yaml",
        parameters={
            "EnvironmentName": "prod",
            "ImageUri": image,
            "SecretArn": world.secret_arn,
            "SubnetIds": "subnet-0a,subnet-0b",
            "SecurityGroupId": "sg-0local",
            "FullbayPublicIp": "127.0.0.1",
            "FullbayApiBaseUrl": world.simulator.url,
            "FullbayStartDate": "2025-01-01",
            "DbHost": PG_HOST,
            "DagsterPgHost": PG_HOST,  # the run-launcher configuration: the deployment's instance
            "ComputeLogBucket": world.bucket,
            "AlertTopicArn": world.topic_arn,
        },
        resources={},
        region=REGION,
        account=ACCOUNT,
    )


CONTAINER = ("Properties", "ContainerDefinitions", 0)


def ecs_container_env(world: World, stack: Stack, task: str) -> dict[str, str]:
    """The container's Environment plus its Secrets, resolved as ECS does at task start."""
    env = world.fake_aws_env()
    env.update({item["Name"]: str(item["Value"]) for item in stack.resource(task, *CONTAINER, "Environment")})
    for item in stack.resource(task, *CONTAINER, "Secrets"):
        env[item["Name"]] = resolve_secret_ref(world, item["ValueFrom"])
    # Cloud Map's code-server.fullbay-prod.local does not resolve here: the same server, by address.
    if "DAGSTER_CODE_SERVER_HOST" in env:
        env["DAGSTER_CODE_SERVER_HOST"] = SERVICE_HOST
    return env


def run_task_env(world: World, daemon_env: dict[str, str]) -> dict[str, str]:
    """What EcsRunLauncher gives a run task: the daemon's env_vars by name, plus the
    secrets named in dagster.yaml, resolved from their references."""
    config = yaml.safe_load((ROOT / "deploy/ecs/dagster.yaml").read_text())["run_launcher"]["config"]["ecs"]
    env = {name: daemon_env[name] for name in config["env_vars"] if name in daemon_env}
    for item in config["secrets"]:
        env[item["name"]] = resolve_secret_ref(world, daemon_env[item["valueFrom"]["env"]])
    return env


def resolve_secret_ref(world: World, reference: str) -> str:
    arn, key = reference.removesuffix("::").rsplit(":", 1)
    value = world.aws("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return str(json.loads(value)[key])


def env_references(*files: str) -> set[str]:
    """Every {env: NAME} of the given files of deploy/ecs."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                names.add(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in files:
        walk(yaml.safe_load((ROOT / "deploy/ecs" / name).read_text()))
    return names


# -- containers ----------------------------------------------------------------------


class Container:
    """A working container of an image; commands run inside it as the image's user
    (or ``user``), on the host's network, with the given environment."""

    def __init__(self, image: str, name: str, user: str | None = None) -> None:
        self.image = image
        self.user = user
        subprocess.run([*BUILDAH, "rm", name], capture_output=True, check=False)
        self.id = subprocess.run(
            [*BUILDAH, "from", "--pull-never", "--name", name, image], capture_output=True, text=True, check=True
        ).stdout.strip()
        self._background: list[subprocess.Popen[bytes]] = []

    def _argv(self, env: dict[str, str], command: list[str]) -> list[str]:
        argv = [*BUILDAH, "run", "--isolation", "chroot", "--network", "host"]
        if self.user:
            argv += ["--user", self.user]
        for name, value in env.items():
            argv += ["--env", f"{name}={value}"]
        return [*argv, self.id, "--", *command]

    def run(self, env: dict[str, str], *command: str, timeout: float = 600) -> str:
        result = subprocess.run(self._argv(env, list(command)), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise CommandFailed(
                f"{self.image}: {' '.join(command)[:120]} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result.stdout

    def start(self, env: dict[str, str], *command: str, log_path: Path) -> subprocess.Popen[bytes]:
        handle = log_path.open("wb")
        process = subprocess.Popen(
            self._argv(env, list(command)), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._background.append(process)
        return process

    def stop_background(self) -> None:
        for process in self._background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # buildah run and what it started, only ours
        for process in self._background:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._background.clear()

    def close(self) -> None:
        self.stop_background()
        subprocess.run([*BUILDAH, "rm", self.id], capture_output=True, check=False)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 180, process: Any = None, log_path: Any = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what}: the process exited {process.returncode}\n{Path(log_path).read_text()[-4000:]}")
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(2)
    tail = Path(log_path).read_text()[-4000:] if log_path else ""
    raise SystemExit(f"{what}: not within {timeout:.0f} s\n{tail}")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")
    log(f"ok: {message}")


# -- the smoke tests -----------------------------------------------------------------------


def smoke_ecs(world: World, container: Container, logs: Path) -> None:
    stack = ecs_stack(world, container.image)
    envs = {task: ecs_container_env(world, stack, task) for task in
            ("CodeServerTaskDefinition", "WebserverTaskDefinition", "DaemonTaskDefinition")}  # fmt: skip
    run_env = run_task_env(world, envs["DaemonTaskDefinition"])
    # Services load the instance and the workspace; a run task only the instance.
    for task, env in {**envs, "run task": run_env}.items():
        needed = env_references("dagster.yaml", *(() if task == "run task" else ("workspace.yaml",)))
        missing = needed - set(env)
        check(not missing, f"{task}: the template sets every {{env: ...}} of the instance {sorted(missing)}")
    uid = container.run({}, "id", "-u").strip()
    check(uid not in ("", "0"), f"ECS image runs as a non-root user (uid {uid})")

    # A run task's work: one partition with the production instance.
    started = time.monotonic()
    container.run(
        {**world.fake_aws_env(), **run_env},
        "dagster", "asset", "materialize", "-m", "fullbay_dagster", "--select", "*", "--partition", DAY,
    )  # fmt: skip
    log(f"materialize {DAY}: {time.monotonic() - started:.0f} s")
    with world.database("fullbay").connect() as connection:
        rows = connection.execute(
            text("SELECT count(*) FROM fullbay_work_orders WHERE invoice_date = :day"), {"day": DAY}
        ).scalar_one()
        runs = connection.execute(text("SELECT run_id, status FROM runs ORDER BY create_timestamp")).all()
    check(rows == INVOICES_PER_DAY, f"{rows} invoices of {DAY} landed in fullbay_work_orders")
    check(len(runs) == 1 and runs[0].status == "SUCCESS", f"the run is in the PostgreSQL instance: {runs}")
    keys = [item["Key"] for item in world.aws("s3").list_objects_v2(Bucket=world.bucket).get("Contents", [])]
    run_keys = [key for key in keys if runs[0].run_id in key]
    check(bool(run_keys), f"its compute logs are in s3://{world.bucket}: {run_keys[:3]}")

    code_env = envs["CodeServerTaskDefinition"]
    server_log = logs / "code-server.log"
    server = container.start(
        code_env, "dagster", "code-server", "start", "-h", SERVICE_HOST, "-p", "4000",
        "-m", "fullbay_dagster", "--location-name", "fullbay_dagster", log_path=server_log,
    )  # fmt: skip
    wait_for(
        "code server",
        lambda: (
            container.run(code_env, "dagster", "api", "grpc-health-check", "-h", SERVICE_HOST, "-p", "4000") is not None
        ),
        process=server,
        log_path=server_log,
    )
    check(True, "the code server answers `dagster api grpc-health-check`")

    web_log = logs / "webserver.log"
    web = container.start(
        envs["WebserverTaskDefinition"], "dagster-webserver", "-h", SERVICE_HOST, "-p", "3000",
        "-w", "/opt/dagster/dagster_home/workspace.yaml", log_path=web_log,
    )  # fmt: skip
    info = wait_for("webserver", lambda: _get_json(f"http://{SERVICE_HOST}:3000/server_info"), process=web,
                    log_path=web_log)  # fmt: skip
    check("dagster_webserver_version" in info, f"/server_info answers: {info}")
    locations = wait_for("code location", lambda: _loaded_locations(), process=web, log_path=web_log)
    check(locations == ["fullbay_dagster"], f"the webserver loaded the code location over gRPC: {locations}")

    daemon_log = logs / "daemon.log"
    since = time.time()
    daemon = container.start(
        envs["DaemonTaskDefinition"], "dagster-daemon", "run", "-w", "/opt/dagster/dagster_home/workspace.yaml",
        log_path=daemon_log,
    )  # fmt: skip
    beats = wait_for("daemon heartbeat", lambda: _heartbeats(world, since), process=daemon, log_path=daemon_log)
    check(bool(beats), f"the daemon's heartbeats are in the instance: {sorted(beats)}")
    container.stop_background()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _loaded_locations() -> list[str]:
    locations = "locationEntries { name locationOrLoadError { __typename } }"
    query = json.dumps({"query": f"{{ workspaceOrError {{ ... on Workspace {{ {locations} }} }} }}"}).encode()
    request = urllib.request.Request(
        f"http://{SERVICE_HOST}:3000/graphql", data=query, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
    return [e["name"] for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"]


def _heartbeats(world: World, since: float) -> set[str]:
    with world.database("fullbay").connect() as connection:
        rows = connection.execute(text("SELECT daemon_type, timestamp FROM daemon_heartbeats")).all()
    return {row.daemon_type for row in rows if row.timestamp.timestamp() >= since - 5}


LAUNCH_SCRIPT = """
import json, os
from datetime import date
from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher import LaunchRunContext
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from fullbay_dagster.defs.definitions import JOB_NAME, defs
from fullbay_dagster.defs.partitions import range_tags

day = os.environ["SMOKE_DAY"]
instance = DagsterInstance.get()
# The run as the webserver creates it from the code server's origin (this image, this working dir).
recon = ReconstructableRepository.for_module(
    "fullbay_dagster", "definitions", working_directory=os.getcwd(), container_image=os.environ["DAGSTER_CURRENT_IMAGE"]
).get_reconstructable_job(JOB_NAME)
origin = RemoteJobOrigin(
    RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(os.environ["DAGSTER_CODE_SERVER_HOST"], 4000, "fullbay_dagster"), "__repository__"
    ),
    JOB_NAME,
)
run = instance.create_run_for_job(
    defs.resolve_job_def(JOB_NAME),
    tags={**range_tags(day, day), "fullbay/launcher": "lambda"},
    job_code_origin=recon.get_python_origin(),
    remote_job_origin=origin,
)
payloads = []
client = instance.run_launcher.launcher("lambda").client
client.meta.events.register("provide-client-params.lambda.Invoke",
                            lambda params, **_: payloads.append(json.loads(params["Payload"])))
instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
print(json.dumps(payloads[0]))
"""

INVOKE_SCRIPT = """
import importlib, json, sys
module, _, name = sys.argv[1].rpartition(".")
result = getattr(importlib.import_module(module), name)(json.loads(sys.argv[2]), None)
print("RESULT " + json.dumps(result, default=str))
"""


def smoke_lambda(world: World, container: Container, ecs: Container) -> None:
    image = container.image
    variables = lambda_stack(world, image).resource("RunFunction", "Properties", "Environment", "Variables")
    env = {name: str(value) for name, value in variables.items()}
    env.update(world.fake_aws_env())
    config = json.loads(subprocess.run([*BUILDAH, "inspect", "--type", "image", image], capture_output=True,
                                       text=True, check=True).stdout)["OCIv1"]["config"]  # fmt: skip
    [handler] = config["Cmd"]
    uid = container.run({}, "id", "-u").strip()
    check(uid == LAMBDA_USER.split(":")[0], f"Lambda image runs as non-root uid {uid}")

    # 1. The EventBridge schedule: yesterday (of the event) plus the re-pulled days, in-process.
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": "2025-03-19T06:00:00Z",
             "detail": {}, "account": ACCOUNT, "region": REGION}  # fmt: skip
    started = time.monotonic()
    output = container.run(env, "python", "-c", INVOKE_SCRIPT, handler, json.dumps(event))
    summary = json.loads(output.split("RESULT ", 1)[1])
    span = f"{summary.get('first_day')}..{summary.get('last_day')}"
    log(f"EventBridge invocation: {time.monotonic() - started:.0f} s, {span}")
    check(summary.get("status") == "success", f"the scheduled invocation succeeded: run {summary.get('run_id')}")
    with world.database("fullbay").connect() as connection:
        rows = connection.execute(
            text("SELECT count(*) FROM fullbay_work_orders WHERE invoice_date BETWEEN :a AND :b"),
            {"a": summary["first_day"], "b": summary["last_day"]},
        ).scalar_one()
    days = (_date(summary["last_day"]) - _date(summary["first_day"])).days + 1
    check(rows == INVOICES_PER_DAY * days, f"{rows} invoices of {days} days landed")
    metrics = world.aws("cloudwatch").list_metrics(Namespace=env["FULLBAY_METRICS_NAMESPACE"])["Metrics"]
    check(bool(metrics), f"metrics reached CloudWatch: {sorted({m['MetricName'] for m in metrics})}")

    # 2. A run launched by the LambdaRunLauncher from the ECS image's production instance.
    daemon_env = ecs_container_env(world, ecs_stack(world, ecs.image), "DaemonTaskDefinition")
    launch_env = {**daemon_env, "SMOKE_DAY": DAY, "DAGSTER_CURRENT_IMAGE": ecs.image}
    payload = json.loads(ecs.run(launch_env, "python", "-c", LAUNCH_SCRIPT).strip().splitlines()[-1])
    run_id = payload["dagster_run"]["run_id"]
    check(world.secrets.api_key not in json.dumps(payload), "the launch payload carries no secret")
    started = time.monotonic()
    output = container.run(env, "python", "-c", INVOKE_SCRIPT, handler, json.dumps(payload))
    log(f"launched-run invocation: {time.monotonic() - started:.0f} s")
    with world.database("fullbay").connect() as connection:
        status = connection.execute(text("SELECT status FROM runs WHERE run_id = :id"), {"id": run_id}).scalar_one()
    check(status == "SUCCESS", f"the Lambda-launched run {run_id} ran and succeeded in the instance")


def _date(value: str) -> Any:
    from datetime import date

    return date.fromisoformat(value)


def run_all(ecs_image: str, lambda_image: str, found: Secrets) -> None:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fullbay-smoke-logs-") as logs:
        world = prepare_world(stack, found)
        ecs = Container(ecs_image, "fullbay-smoke-ecs")
        stack.callback(ecs.close)
        lambda_ = Container(lambda_image, "fullbay-smoke-lambda", user=LAMBDA_USER)
        stack.callback(lambda_.close)
        started = time.monotonic()
        smoke_ecs(world, ecs, Path(logs))
        log(f"ECS image smoke tests: {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        smoke_lambda(world, lambda_, ecs)
        log(f"Lambda image smoke tests: {time.monotonic() - started:.0f} s")
