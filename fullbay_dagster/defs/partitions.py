"""The daily partitions every asset shares: Fullbay's invoice date in the shop's timezone."""

import warnings
from datetime import date, timedelta

from dagster import AssetExecutionContext, BackfillPolicy, BetaWarning, DailyPartitionsDefinition, OpExecutionContext

from fullbay_dagster.defs.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from fullbay_dagster.defs.environment import SETTINGS
from fullbay_dagster.defs.settings import SettingsError

daily_partitions = DailyPartitionsDefinition(start_date=SETTINGS.start_date, timezone=SETTINGS.timezone)

# A range of days runs as one run: the raw step fetches it in 7-day windows. The
# parameter is beta in 1.13 and the decorators warn at import; silence just that notice.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta", category=BetaWarning)
single_run = BackfillPolicy.single_run()


def partition_days(context: AssetExecutionContext | OpExecutionContext) -> list[date]:
    """The days of the run's partition key or range, oldest first."""
    return [date.fromisoformat(key) for key in context.partition_keys]


def span(days: list[date]) -> str:
    """One way to write a span of days everywhere: ``2026-11-15`` or ``2026-11-15..2026-11-17``."""
    return days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover a partition range (single-run backfill policy).

    A day before the first partition would fail later with Dagster's
    DagsterInvalidSubsetError; say here which setting decides it."""
    if first < SETTINGS.start_date:
        raise SettingsError(
            f"{first} is before FULLBAY_START_DATE ({SETTINGS.start_date}), the first daily partition: "
            "set FULLBAY_START_DATE earlier to load it."
        )
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def run_days(tags: dict[str, str]) -> list[date]:
    """The partition days a run covered, from its single-partition or range tags."""
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
        last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if PARTITION_NAME_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_NAME_TAG])]
    return []
