#!/usr/bin/env bash
# Lint the AWS deployment: the CloudFormation/SAM templates with cfn-lint (any
# finding, error or warning, fails), then deploy/ecs/dagster.yaml against
# Dagster's own config schemas. Nothing here talks to AWS or to a database.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

echo "== cfn-lint deploy/ecs/template.yaml deploy/lambda/template.yaml =="
"$VENV/bin/cfn-lint" deploy/ecs/template.yaml deploy/lambda/template.yaml
echo "cfn-lint: no findings"

echo "== deploy/ecs/dagster.yaml and workspace.yaml against Dagster's schemas =="
# Dummy values for every {env: ...} in the file: Dagster resolves them while
# validating. No client below opens a connection.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint AWS_EC2_METADATA_DISABLED=true \
  DAGSTER_PG_USERNAME=dagster DAGSTER_PG_PASSWORD=lint DAGSTER_PG_HOST=db.invalid DAGSTER_PG_DB=dagster \
  FULLBAY_MAX_CONCURRENT_RUNS=4 FULLBAY_DEFAULT_LAUNCHER=ecs FULLBAY_RUN_FUNCTION=fullbay-run \
  FULLBAY_RUN_TASK_ROLE_ARN=arn:aws:iam::123456789012:role/run \
  FULLBAY_RUN_EXECUTION_ROLE_ARN=arn:aws:iam::123456789012:role/exec \
  FULLBAY_RUN_LOG_GROUP=/fullbay/runs \
  FULLBAY_API_KEY_SECRET_REF=arn:aws:secretsmanager:us-east-1:123456789012:secret:fullbay-AbCdEf:fullbay_api_key:: \
  DB_PASSWORD_SECRET_REF=arn:aws:secretsmanager:us-east-1:123456789012:secret:fullbay-AbCdEf:db_password:: \
  DAGSTER_PG_PASSWORD_SECRET_REF=arn:aws:secretsmanager:us-east-1:123456789012:secret:fullbay-AbCdEf:db_password:: \
  FULLBAY_COMPUTE_LOG_BUCKET=lint-bucket FULLBAY_COMPUTE_LOG_PREFIX=compute-logs \
  DAGSTER_CODE_SERVER_HOST=code-server.fullbay-prod.local \
  "$PY" - deploy/ecs <<'PY'
import importlib
import sys

from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData


def fail(what, errors):
    print(f"deploy/ecs/dagster.yaml: {what} is invalid:", file=sys.stderr)
    for error in errors:
        print(f"  {error.message}", file=sys.stderr)
    sys.exit(1)


def check_section(name, config, config_type):
    result = process_config(config_type, config)
    if not result.success:
        fail(name, result.errors)
    return result.value


# 1. Top level: storage (postgres_db, every field), run_monitoring, run_retries,
#    telemetry, and the module/class/config shape of the pluggable sections.
#    dagster_instance_config validates; it does not build the instance.
config, _ = dagster_instance_config(sys.argv[1])
pg = config["storage"]["postgres"]["postgres_db"]
assert pg["scheme"] == "postgresql+psycopg2", "storage scheme must name psycopg2"
assert pg["params"].get("sslmode") == "require", "storage must require TLS"
checked = ["storage", "run_monitoring", "run_retries", "telemetry"]

# 2. Each pluggable section against its own class's schema (env resolved).
for section in ("run_coordinator", "compute_logs", "local_artifact_storage"):
    data = config[section]
    klass = getattr(importlib.import_module(data["module"]), data["class"])
    check_section(section, data.get("config") or {}, klass.config_type())
    checked.append(f"{section} ({data['class']})")

# One step at a time calls Fullbay: the fullbay_api pool (the only pool) has limit 1.
assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}, config["concurrency"]
checked.append("concurrency (fullbay_api pool limit 1)")

# 3. The run launcher. The ECS part is built for real (EcsRunLauncher's
#    constructor checks run_task_kwargs and propagate_tags; it makes no AWS call
#    without a task definition name). The routing launcher is checked when the
#    module exists; until then only its `ecs` and `lambda` parts are.
launcher = config["run_launcher"]
from dagster_aws.ecs import EcsRunLauncher

ecs_value = check_section("run_launcher.config.ecs", launcher["config"]["ecs"], EcsRunLauncher.config_type())
EcsRunLauncher.from_config_value(ConfigurableClassData("dagster_aws.ecs", "EcsRunLauncher", "{}"), ecs_value)
checked.append("run_launcher.config.ecs (EcsRunLauncher, constructed)")
assert launcher["config"]["lambda"]["function_name"] == {"env": "FULLBAY_RUN_FUNCTION"}
try:
    module = importlib.import_module(launcher["module"])
    routing = getattr(module, launcher["class"])
except (ImportError, AttributeError) as exc:
    print(f"NOTE: {launcher['module']}.{launcher['class']} is not importable ({exc}); "
          "its own schema was not checked, only the ecs part.")
else:
    check_section("run_launcher", launcher["config"], routing.config_type())
    checked.append(f"run_launcher ({launcher['class']})")
    lambda_launcher = getattr(module, "LambdaRunLauncher", None)
    if lambda_launcher is not None:
        check_section("run_launcher.config.lambda", launcher["config"]["lambda"], lambda_launcher.config_type())
        checked.append("run_launcher.config.lambda (LambdaRunLauncher)")

# 4. The webserver's and daemon's workspace (the code server over gRPC).
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster_shared.yaml_utils import load_yaml_from_path

workspace_path = f"{sys.argv[1]}/workspace.yaml"
ensure_workspace_config(load_yaml_from_path(workspace_path), workspace_path)
checked.append("workspace.yaml (grpc_server)")

print("dagster.yaml valid:", "; ".join(checked))
PY
