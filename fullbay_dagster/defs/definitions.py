"""The one ``Definitions`` object of the code location.

Every definition lives at module level in its own module; this one only gathers
them. The deployed-only sensors and freshness checks join when ENVIRONMENT says so.
"""

import os

from dagster import Definitions, colored_console_logger

from fullbay_dagster.defs.alerts import freshness_checks, freshness_sensor, fullbay_run_failure_alert
from fullbay_dagster.defs.assets import fullbay_invoices_api, ingestion_metadata, normalise_work_orders, raw_work_orders
from fullbay_dagster.defs.checks import fullbay_checks
from fullbay_dagster.defs.endpoints import endpoint_assets, receivables_assets
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.defs.resources import resources_from_env
from fullbay_dagster.defs.schedules import JOB_NAME, fullbay_daily_job, fullbay_daily_schedule
from fullbay_dagster.defs.tables import linked_to_repository

__all__ = ["JOB_NAME", "defs"]

defs = Definitions(
    assets=[
        fullbay_invoices_api,
        *linked_to_repository([raw_work_orders, normalise_work_orders, ingestion_metadata]),
        *linked_to_repository([*endpoint_assets, *receivables_assets]),
    ],
    asset_checks=[fullbay_checks, *(freshness_checks if SETTINGS.deployed else [])],
    jobs=[fullbay_daily_job],
    schedules=[fullbay_daily_schedule],
    sensors=[fullbay_run_failure_alert, freshness_sensor] if SETTINGS.deployed else [],
    resources=resources_from_env(SETTINGS),
    # Every job, the CLI's and the UI's too, logs at LOG_LEVEL (INFO by default), not DEBUG.
    loggers={"console": colored_console_logger.configured({"log_level": os.environ.get("LOG_LEVEL") or "INFO"})},
    # The default multiprocess executor, on purpose: with every step in the run's own
    # process (in_process_executor, measured in docs/benchmarks.md: a third less memory),
    # a run killed with SIGKILL leaves its fullbay_api pool slot and its running rows
    # with no process alive to release them, and the next run of its days waits on the
    # slot forever without a daemon. A step in its own process notices that its run
    # is gone and cleans up (defs/runs.py RunGuard).
)
