"""The only place the Dagster layer imports private ``dagster._*`` names.

Dagster 1.13 has no public constant for the tags that mark a run as covering a
partition range or a single partition (they are what the UI, the CLI's
``--partition-range`` and backfills write), so the schedule, the Lambda handler,
the demo and the failure sensor import them from here.
"""

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

__all__ = ["ASSET_PARTITION_RANGE_END_TAG", "ASSET_PARTITION_RANGE_START_TAG", "PARTITION_NAME_TAG"]
