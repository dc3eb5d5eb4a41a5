"""The one ``Definitions`` object of the code location.

Every definition lives at module level in its own module; this one only gathers
them: the endpoints chosen in FULLBAY_ENDPOINTS (invoices among them or not), their
checks, the freshness checks and their sensor (running by default only when
deployed), and the run-failure alert when ENVIRONMENT says deployed.
"""

from dagster import Definitions, Field, colored_console_logger, in_process_executor

from fullbay_dagster.defs.alerts import fullbay_run_failure_alert
from fullbay_dagster.defs.endpoints import (
    endpoint_asset_checks,
    endpoint_assets,
    invoice_api,
    invoice_assets,
    invoice_checks,
    receivables_assets,
)
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.defs.freshness import freshness_checks, freshness_sensor
from fullbay_dagster.defs.resources import resources_from_env
from fullbay_dagster.defs.schedules import JOB_NAME, fullbay_daily_job, fullbay_daily_schedule
from fullbay_dagster.defs.tables import linked_to_repository

__all__ = ["JOB_NAME", "defs"]

# Dagster uses a job's loggers only for a run whose config names them (the launchpad's
# or --config-json's `loggers: console:`); a run without logs at the instance's
# python_logs.python_log_level (INFO in deploy/*/dagster.yaml). Named, the console
# logs at the level the run config gives, else at LOG_LEVEL.
console_logger = colored_console_logger.configured(
    lambda config: {"log_level": config["log_level"], "name": "dagster"},
    config_schema={"log_level": Field(str, default_value=SETTINGS.log_level, is_required=False)},
)

defs = Definitions(
    assets=[*invoice_api, *linked_to_repository([*invoice_assets, *endpoint_assets, *receivables_assets])],
    asset_checks=[*invoice_checks, *endpoint_asset_checks, *freshness_checks],
    jobs=[fullbay_daily_job],
    schedules=[fullbay_daily_schedule],
    sensors=[freshness_sensor, *([fullbay_run_failure_alert] if SETTINGS.deployed else [])],
    resources=resources_from_env(SETTINGS),
    loggers={"console": console_logger},
    # Every step in the run's own process: one Dagster start-up and one definitions
    # load per run instead of one per step (docs/benchmarks.md: a fifth faster, a
    # quarter less memory). A run killed with SIGKILL then keeps its fullbay_api slot
    # with no process left to free it; the next run frees it before any step waits
    # (FullbayAPIResource.setup_for_execution -> defs/runs.py release_dead_runs).
    executor=in_process_executor,
)
