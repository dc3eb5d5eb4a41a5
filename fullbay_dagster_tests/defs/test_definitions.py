"""The code location's shape: what the UI, the CLI and the schedule see."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, BackfillPolicy, DefaultScheduleStatus, Definitions, build_schedule_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fullbay_dagster.defs.definitions import JOB_NAME, build_definitions
from fullbay_dagster.defs.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ["raw_work_orders", "work_orders", "ingestion_metadata"]


def test_dagster_definitions_validate_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_assets_are_partitioned_daily_and_backfill_in_one_run() -> None:
    defs = build_definitions(load_settings({"FULLBAY_START_DATE": "2025-01-01", "FULLBAY_TIMEZONE": "America/Chicago"}))
    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == sorted(ASSETS)
    for name in ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def is not None
        assert node.partitions_def.timezone == "America/Chicago"
        assert node.partitions_def.get_first_partition_key() == "2025-01-01"
        assert node.backfill_policy == BackfillPolicy.single_run()
        assert node.group_name == "fullbay"
        assert node.owners == ["team:data-engineering"]
        assert node.description
    assert [p.to_user_string() for p in graph.get(AssetKey("work_orders")).parent_keys] == ["raw_work_orders"]
    checks = {(key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {
        ("work_orders", "no_quarantined_records"),
        ("work_orders", "unique_fullbay_id"),
        ("work_orders", "line_sums_match_totals"),
        ("work_orders", "rows_match_api_count"),
        ("work_orders", "no_field_issues"),
        ("work_orders", "quarantine_below_one_percent"),
        ("work_orders", "schema_as_known"),
    }


def _evaluate(defs: Definitions, when: datetime) -> dict[str, str]:
    schedule = defs.resolve_schedule_def("fullbay_daily_schedule")
    with build_schedule_context(scheduled_execution_time=when) as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    return dict(request.tags)


def test_schedule_loads_yesterday_and_repulls_recent_days() -> None:
    defs = build_definitions(load_settings({"FULLBAY_START_DATE": "2025-01-01", "FULLBAY_REPULL_DAYS": "2"}))
    tags = _evaluate(defs, datetime(2025, 3, 12, 0, 0, tzinfo=ZoneInfo("UTC")))
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-03-09", "2025-03-11")
    job = defs.resolve_schedule_def("fullbay_daily_schedule").job_name
    assert job == JOB_NAME


def test_schedule_in_the_shops_timezone() -> None:
    defs = build_definitions(
        load_settings(
            {
                "FULLBAY_START_DATE": "2025-01-01",
                "FULLBAY_TIMEZONE": "America/Chicago",
                "FULLBAY_REPULL_DAYS": "0",
                "SCHEDULE_EXPRESSION": "cron(0 6 * * ? *)",
            }
        )
    )
    schedule = defs.resolve_schedule_def("fullbay_daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "America/Chicago"
    # 06:00 in Chicago on 12 March is 11:00 UTC: the newest complete Chicago day is the 11th.
    tags = _evaluate(defs, datetime(2025, 3, 12, 6, 0, tzinfo=ZoneInfo("America/Chicago")))
    assert tags[ASSET_PARTITION_RANGE_START_TAG] == tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-03-11"


def test_schedule_does_not_reach_before_the_start_date() -> None:
    defs = build_definitions(load_settings({"FULLBAY_START_DATE": "2025-03-10", "FULLBAY_REPULL_DAYS": "5"}))
    tags = _evaluate(defs, datetime(2025, 3, 12, 0, 0, tzinfo=ZoneInfo("UTC")))
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-03-10", "2025-03-11")


def test_schedule_runs_by_default_only_when_deployed() -> None:
    local = build_definitions(load_settings({})).resolve_schedule_def("fullbay_daily_schedule")
    prod = build_definitions(load_settings({"ENVIRONMENT": "prod"})).resolve_schedule_def("fullbay_daily_schedule")
    assert local.default_status == DefaultScheduleStatus.STOPPED
    assert prod.default_status == DefaultScheduleStatus.RUNNING


def test_an_invalid_cron_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="SCHEDULE_EXPRESSION"):
        build_definitions(load_settings({"SCHEDULE_EXPRESSION": "61 25 * * *"}))


def test_the_lambda_handler_and_the_client_import_without_dagster() -> None:
    """Lean cold starts: importing them must not build the definitions or import Dagster."""
    code = (
        "import sys, fullbay_dagster.aws.lambda_handler, fullbay_dagster.fullbay.client; "
        "print(sorted(m for m in ('dagster', 'pandas', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
