"""The one ``Definitions`` object of the code location, built from settings."""

from __future__ import annotations

import os
import warnings
from typing import Any

from dagster import (
    AssetSelection,
    BetaWarning,
    DailyPartitionsDefinition,
    Definitions,
    EnvVar,
    define_asset_job,
    in_process_executor,
)

from fullbay_dagster.defs.alerts import build_failure_sensor, build_freshness
from fullbay_dagster.defs.assets import API_TAG, build_assets
from fullbay_dagster.defs.resources import AlertsResource, FullbayAPIResource, WarehouseResource
from fullbay_dagster.defs.schedules import build_daily_schedule
from fullbay_dagster.defs.settings import Settings, load_settings

JOB_NAME = "fullbay_daily_job"

# Optional settings become EnvVar references only when set: an EnvVar that is
# unset fails the run, and a plain value would show in the UI (bad for secrets).
_AWS = {"secret_name": "SECRETS_MANAGER_SECRET_NAME", "aws_region": "AWS_REGION"}
_OPTIONAL = {
    **_AWS,
    "api_key": "FULLBAY_API_KEY",
    "base_url": "FULLBAY_API_BASE_URL",
    "public_ip": "FULLBAY_PUBLIC_IP",
    "ip_echo_url": "FULLBAY_IP_ECHO_URL",
    "token_timezone": "FULLBAY_TOKEN_TIMEZONE",
}
_OPTIONAL_DB = {
    **_AWS,
    "database_url": "DATABASE_URL",
    "db_host": "DB_HOST",
    "db_name": "DB_NAME",
    "db_user": "DB_USER",
    "db_password": "DB_PASSWORD",
    "db_sslmode": "DB_SSLMODE",
}


def _present(mapping: dict[str, str]) -> dict[str, Any]:
    return {field: EnvVar(name) for field, name in mapping.items() if os.environ.get(name)}


def build_resources(settings: Settings) -> dict[str, object]:
    warehouse_fields = _present(_OPTIONAL_DB)
    if os.environ.get("DB_PORT"):
        warehouse_fields["db_port"] = EnvVar.int("DB_PORT")
    if os.environ.get("DB_IAM_AUTH", "").lower() in ("1", "true", "yes"):
        warehouse_fields["db_iam_auth"] = True
    if settings.deployed and "db_sslmode" not in warehouse_fields:
        warehouse_fields["db_sslmode"] = "require"  # RDS in production: TLS unless told otherwise
    alerts_fields = _present({"topic_arn": "FULLBAY_ALERT_TOPIC_ARN", "aws_region": "AWS_REGION"})
    if os.environ.get("FULLBAY_METRICS_NAMESPACE"):
        alerts_fields["metrics_namespace"] = os.environ["FULLBAY_METRICS_NAMESPACE"]
    return {
        "fullbay": FullbayAPIResource(**_present(_OPTIONAL)),
        "warehouse": WarehouseResource(**warehouse_fields),
        "alerts": AlertsResource(enabled=settings.deployed, environment=settings.environment, **alerts_fields),
    }


def build_definitions(settings: Settings) -> Definitions:
    partitions_def = DailyPartitionsDefinition(start_date=settings.start_date, timezone=settings.timezone)
    with warnings.catch_warnings():
        # BackfillPolicy is marked beta; single-run backfills are what this project relies on.
        warnings.simplefilter("ignore", BetaWarning)
        assets = build_assets(partitions_def, settings.timezone)
    job = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.assets(*assets),
        tags=API_TAG,
        description="Fullbay invoices of the selected days into the warehouse.",
    )
    schedule = build_daily_schedule(
        job, partitions_def, settings.cron_schedule, settings.repull_days, running=settings.deployed
    )
    sensors, checks = [], []
    if settings.deployed:
        freshness_checks, freshness_sensor = build_freshness(assets[1], settings.timezone, settings.freshness_hour)
        sensors, checks = [build_failure_sensor(), freshness_sensor], freshness_checks
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[job],
        schedules=[schedule],
        sensors=sensors,
        resources=build_resources(settings),
        # The three steps run one after the other: in one process they share the
        # loaded code and the database pool instead of starting a Python process
        # (Dagster imports, definitions, a connection) per step; half the memory of
        # a run and seconds less per run, for `dagster asset materialize` too.
        executor=in_process_executor,
    )


defs = build_definitions(load_settings())
