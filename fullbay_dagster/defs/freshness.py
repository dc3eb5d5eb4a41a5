"""Freshness: Dagster's own partition freshness check on each loaded table.

For ``work_orders`` (when invoices are loaded) and each chosen endpoint's typed
table: once FULLBAY_FRESHNESS_HOUR (shop time, FULLBAY_TIMEZONE) has passed, the
newest complete day's partition must have been materialized, or the check fails.
The check is defined everywhere (run it from an asset's Checks tab); the sensor
that evaluates it every few minutes runs by default only when deployed
(ENVIRONMENT prod, production or staging); locally it is defined but stopped, and
can be started in the UI (Automation).
"""

import warnings

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from fullbay_dagster.defs.endpoints import CHOSEN, INVOICES_CHOSEN
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.fullbay.endpoints import INVOICES

#: The tables whose freshness is judged: each endpoint's normalised table.
FRESHNESS_TARGETS = [
    *([AssetKey("work_orders")] if INVOICES_CHOSEN else []),
    *(AssetKey(e.name) for e in CHOSEN if e.name != INVOICES.name),
]

with warnings.catch_warnings():
    # Superseded by FreshnessPolicy, which judges when an asset last materialized, not
    # whether a given day's partition exists: the partition-aware check is what we need.
    warnings.simplefilter("ignore", SupersessionWarning)
    freshness_checks = list(
        build_time_partition_freshness_checks(
            assets=FRESHNESS_TARGETS,
            deadline_cron=f"0 {SETTINGS.freshness_hour} * * *",
            timezone=SETTINGS.timezone,
        )
    )
    freshness_sensor = build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name="fullbay_freshness_sensor",
        default_status=DefaultSensorStatus.RUNNING if SETTINGS.deployed else DefaultSensorStatus.STOPPED,
    )
