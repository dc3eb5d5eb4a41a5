"""The only place the Dagster layer imports private ``dagster._*`` names.

Dagster 1.13 has no public constant for the tags that mark a run as covering a
partition range or a single partition (they are what the UI, the CLI's
``--partition-range`` and backfills write), so the schedule, the Lambda handler,
the demo and the failure sensor import them from here. Nor has it a public name for
what ties a check result to the materialization it judged, without which the UI's
partition view of a check counts no day's result as current (see ``checks``).
"""

from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "PARTITION_NAME_TAG",
    "AssetCheckEvaluationTargetMaterializationData",
]
