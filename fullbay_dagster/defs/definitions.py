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
)

from fullbay_dagster.defs.assets import API_TAG, build_assets
from fullbay_dagster.defs.resources import FullbayAPIResource, WarehouseResource
from fullbay_dagster.defs.schedules import build_daily_schedule
from fullbay_dagster.defs.settings import Settings, load_settings

JOB_NAME = "fullbay_daily_job"

# Optional settings become EnvVar references only when set: an EnvVar that is
# unset fails the run, and a plain value would show in the UI (bad for secrets).
_OPTIONAL = {
    "base_url": "FULLBAY_API_BASE_URL",
    "public_ip": "FULLBAY_PUBLIC_IP",
    "ip_echo_url": "FULLBAY_IP_ECHO_URL",
    "token_timezone": "FULLBAY_TOKEN_TIMEZONE",
}
_OPTIONAL_DB = {
    "database_url": "DATABASE_URL",
    "db_host": "DB_HOST",
    "db_name": "DB_NAME",
    "db_user": "DB_USER",
    "db_password": "DB_PASSWORD",
    "db_sslmode": "DB_SSLMODE",
}


def _present(mapping: dict[str, str]) -> dict[str, Any]:
    return {field: EnvVar(name) for field, name in mapping.items() if os.environ.get(name)}


def build_resources() -> dict[str, object]:
    warehouse_fields = _present(_OPTIONAL_DB)
    if os.environ.get("DB_PORT"):
        warehouse_fields["db_port"] = EnvVar.int("DB_PORT")
    return {
        "fullbay": FullbayAPIResource(api_key=EnvVar("FULLBAY_API_KEY"), **_present(_OPTIONAL)),
        "warehouse": WarehouseResource(**warehouse_fields),
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
    return Definitions(assets=assets, jobs=[job], schedules=[schedule], resources=build_resources())


defs = build_definitions(load_settings())
