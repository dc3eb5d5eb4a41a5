"""The code location's shape: what the UI, the CLI and the schedule see."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, BackfillPolicy, DefaultScheduleStatus, Definitions, build_schedule_context

from fullbay_dagster.defs.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.defs.settings import SettingsError
from fullbay_dagster.defs.tables import TABLES, column_schema
from fullbay_dagster.warehouse.schema import endpoint_line_tables, endpoint_tables
from fullbay_dagster.warehouse.schema import metadata as warehouse_metadata
from fullbay_dagster_tests.defs_loader import load_definitions

ROOT = Path(__file__).resolve().parents[2]
TABLE_ASSETS = [
    "raw_work_orders",
    "work_orders",
    "work_order_lines",
    "quarantine",
    "field_issues",
    "schema_fields",
    "ingestion_metadata",
]
API = "fullbay/getInvoices"


def test_dagster_definitions_validate_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_table_is_a_partitioned_asset_with_its_schema() -> None:
    defs = load_definitions({"FULLBAY_START_DATE": "2025-01-01", "FULLBAY_TIMEZONE": "America/Chicago"})
    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == sorted([*TABLE_ASSETS, API])
    assert graph.get(AssetKey(["fullbay", "getInvoices"])).is_external
    # every table of the warehouse's schema is an asset (the run log included)
    # (the other endpoints' tables and the receivables are assets of defs/endpoints.py: test_endpoint_assets)
    others = {"fullbay_raw_records", "fullbay_receivables", *(t.name for t in endpoint_tables.values())}
    others |= {t.name for t in endpoint_line_tables.values()}
    assert {TABLES[name].table.name for name in TABLE_ASSETS} == set(warehouse_metadata.tables) - others
    for name in TABLE_ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def is not None
        assert node.partitions_def.timezone == "America/Chicago"
        assert node.partitions_def.get_first_partition_key() == "2025-01-01"
        assert node.backfill_policy == BackfillPolicy.single_run()
        assert node.group_name == "fullbay"
        assert node.owners == ["team:data-engineering"]
        assert node.tags["source"] == "fullbay"
        assert node.kinds >= {"table", "postgres"}
        assert node.description
        table = TABLES[name].table
        assert node.metadata["dagster/table_name"] == table.name
        schema = node.metadata["dagster/column_schema"].schema
        assert [c.name for c in schema.columns] == [c.name for c in table.columns]
        assert schema == column_schema(table)
        assert node.metadata["dagster/code_references"].code_references
    parents = {name: sorted(p.to_user_string() for p in graph.get(AssetKey(name)).parent_keys) for name in TABLE_ASSETS}
    assert parents == {
        "raw_work_orders": [API],
        "work_orders": ["raw_work_orders"],
        "work_order_lines": ["raw_work_orders"],
        "quarantine": ["raw_work_orders"],
        "field_issues": ["raw_work_orders"],
        "schema_fields": ["raw_work_orders"],
        "ingestion_metadata": ["field_issues", "quarantine", "schema_fields", "work_order_lines", "work_orders"],
    }
    assert graph.get(AssetKey("raw_work_orders")).pools == {"fullbay_api"}
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        ("work_orders", "rows_match_api_count"),
        ("work_orders", "raw_and_normalised_agree"),
        ("work_order_lines", "line_sums_match_totals"),
        ("quarantine", "no_quarantined_records"),
        ("work_orders", "quarantine_below_one_percent"),
        ("field_issues", "no_field_issues"),
        ("schema_fields", "schema_as_known"),
        ("work_orders", "freshness_check"),  # Dagster's, defs/freshness.py
    }


def test_kinds_follow_the_configured_backend() -> None:
    graph = load_definitions({"DATABASE_URL": "sqlite:///x.db"}).resolve_asset_graph()
    assert "sqlite" in graph.get(AssetKey("work_orders")).kinds
    assert "postgres" not in graph.get(AssetKey("work_orders")).kinds


def test_the_column_schema_is_generated_from_the_table() -> None:
    schema = column_schema(TABLES["work_orders"].table)
    by_name = {c.name: c for c in schema.columns}
    assert by_name["total_amount"].type == "NUMERIC(16, 4)"
    assert by_name["vehicle_info"].type == "JSONB"
    assert by_name["fullbay_id"].constraints.unique and not by_name["fullbay_id"].constraints.nullable
    assert by_name["work_order_number"].description == "ServiceOrder.repairOrderNumber (RO #)"


def _evaluate(defs: Definitions, when: datetime) -> dict[str, str]:
    schedule = defs.resolve_schedule_def("fullbay_daily_schedule")
    with build_schedule_context(scheduled_execution_time=when) as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    return dict(request.tags)


def test_schedule_loads_yesterday_and_repulls_recent_days() -> None:
    defs = load_definitions({"FULLBAY_START_DATE": "2025-01-01", "FULLBAY_REPULL_DAYS": "2"})
    tags = _evaluate(defs, datetime(2025, 3, 12, 0, 0, tzinfo=ZoneInfo("UTC")))
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-03-09", "2025-03-11")
    job = defs.resolve_schedule_def("fullbay_daily_schedule").job_name
    assert job == JOB_NAME


def test_schedule_in_the_shops_timezone() -> None:
    defs = load_definitions(
        {
            "FULLBAY_START_DATE": "2025-01-01",
            "FULLBAY_TIMEZONE": "America/Chicago",
            "FULLBAY_REPULL_DAYS": "0",
            "SCHEDULE_EXPRESSION": "cron(0 6 * * ? *)",
        }
    )
    schedule = defs.resolve_schedule_def("fullbay_daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "America/Chicago"
    # 06:00 in Chicago on 12 March is 11:00 UTC: the newest complete Chicago day is the 11th.
    tags = _evaluate(defs, datetime(2025, 3, 12, 6, 0, tzinfo=ZoneInfo("America/Chicago")))
    assert tags[ASSET_PARTITION_RANGE_START_TAG] == tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-03-11"


def test_schedule_does_not_reach_before_the_start_date() -> None:
    defs = load_definitions({"FULLBAY_START_DATE": "2025-03-10", "FULLBAY_REPULL_DAYS": "5"})
    tags = _evaluate(defs, datetime(2025, 3, 12, 0, 0, tzinfo=ZoneInfo("UTC")))
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == ("2025-03-10", "2025-03-11")


def test_schedule_runs_by_default_only_when_deployed() -> None:
    local = load_definitions({}).resolve_schedule_def("fullbay_daily_schedule")
    prod = load_definitions({"ENVIRONMENT": "prod"}).resolve_schedule_def("fullbay_daily_schedule")
    assert local.default_status == DefaultScheduleStatus.STOPPED
    assert prod.default_status == DefaultScheduleStatus.RUNNING


def test_an_invalid_cron_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="SCHEDULE_EXPRESSION"):
        load_definitions({"SCHEDULE_EXPRESSION": "61 25 * * *"})


def test_the_lambda_handler_and_the_client_import_without_dagster() -> None:
    """Lean cold starts: importing them must not build the definitions or import Dagster."""
    code = (
        "import sys, fullbay_dagster.aws.lambda_handler, fullbay_dagster.fullbay.client; "
        "print(sorted(m for m in ('dagster', 'pandas', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_day_before_the_start_date_names_the_setting() -> None:
    load_definitions({"FULLBAY_START_DATE": "2025-01-01"})
    from fullbay_dagster.defs.partitions import range_tags

    with pytest.raises(SettingsError, match=r"2024-12-31 is before FULLBAY_START_DATE \(2025-01-01\)"):
        range_tags("2024-12-31", "2025-01-02")
    assert range_tags("2025-01-01", "2025-01-02")
