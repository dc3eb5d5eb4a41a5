"""FULLBAY_ENDPOINTS and FULLBAY_DATE_FIELDS shape the code location: which assets,
checks, freshness checks and job steps exist, and which settings are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    define_asset_job,
)
from dagster._core.test_utils import freeze_time  # Dagster's own clock control for its time-based checks

from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.defs.settings import SettingsError
from fullbay_dagster_tests.defs_loader import load_definitions

INVOICE_ASSETS = {
    "fullbay/getInvoices",
    "raw_work_orders",
    "work_orders",
    "work_order_lines",
    "quarantine",
    "field_issues",
    "schema_fields",
    "ingestion_metadata",
}


def _keys(defs: Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def _checks(defs: Definitions) -> set[tuple[str, str]]:
    return {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}


def test_invoices_can_be_turned_off() -> None:
    defs = load_definitions({"FULLBAY_ENDPOINTS": "customer_payments"})
    assert _keys(defs) == {"fullbay/getCustomerPayments", "raw_customer_payments", "customer_payments"}
    assert _checks(defs) == {
        ("customer_payments", "keys_unique"),
        ("customer_payments", "rows_match_api_count"),
        ("customer_payments", "no_quarantined_records"),
        ("customer_payments", "freshness_check"),
    }
    job = defs.resolve_job_def(JOB_NAME)
    assert {node.name for node in job.graph.node_defs} >= {"raw_customer_payments", "normalise_customer_payments"}
    assert not any("work_orders" in node.name for node in job.graph.node_defs)


def test_receivables_need_invoices_and_payments() -> None:
    assert "receivables" in _keys(load_definitions({"FULLBAY_ENDPOINTS": "invoices,customer_payments"}))
    assert "receivables" not in _keys(load_definitions({"FULLBAY_ENDPOINTS": "customer_payments,vendor_bills"}))
    assert "receivables" not in _keys(load_definitions({"FULLBAY_ENDPOINTS": "invoices"}))


def test_all_seven_by_default_with_each_endpoints_checks() -> None:
    defs = load_definitions({"FULLBAY_ENDPOINTS": "all"})
    assert INVOICE_ASSETS | {"receivables", "vendor_bills_lines", "adjustments"} <= _keys(defs)
    for name in ("customer_payments", "customer_credits", "adjustments", "counter_sales", "vendor_bills"):
        assert {(name, c) for c in ("keys_unique", "rows_match_api_count", "no_quarantined_records")} <= _checks(defs)
    # the daily job runs every data check but not the freshness checks (they judge the clock)
    steps = {node.name for node in defs.resolve_job_def(JOB_NAME).graph.node_defs}
    assert {"fullbay_checks", "vendor_credits_checks", "receivables"} <= steps
    assert not any(step.startswith("freshness") for step in steps)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FULLBAY_ENDPOINTS": ""}, r"FULLBAY_ENDPOINTS is set but names no endpoint.*invoices, customer_payments"),
        ({"FULLBAY_ENDPOINTS": " , "}, r"FULLBAY_ENDPOINTS is set but names no endpoint"),
        ({"FULLBAY_ENDPOINTS": "invoices,parts"}, r"FULLBAY_ENDPOINTS: unknown endpoint 'parts'; known: invoices, "),
        ({"FULLBAY_DATE_FIELDS": "vendor_bills"}, r"FULLBAY_DATE_FIELDS: expected endpoint=field pairs"),
        ({"FULLBAY_DATE_FIELDS": "bills=billDate"}, r"FULLBAY_DATE_FIELDS: unknown endpoint 'bills'; known: "),
        (
            {"FULLBAY_DATE_FIELDS": "invoices=created"},
            r"FULLBAY_DATE_FIELDS: invoices are always placed by invoiceDate",
        ),
    ],
)
def test_bad_endpoint_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_definitions(env)


def test_a_confirmed_date_field_reaches_the_raw_asset() -> None:
    defs = load_definitions({"FULLBAY_ENDPOINTS": "vendor_bills", "FULLBAY_DATE_FIELDS": "getVendorBills=billDate"})
    description = defs.resolve_asset_graph().get(AssetKey("raw_vendor_bills")).description or ""
    assert "7-day windows placed by billDate" in description


def test_the_freshness_sensor_runs_by_default_only_when_deployed() -> None:
    local = load_definitions({}).resolve_sensor_def("fullbay_freshness_sensor")
    prod = load_definitions({"ENVIRONMENT": "prod"}).resolve_sensor_def("fullbay_freshness_sensor")
    assert local.default_status == DefaultSensorStatus.STOPPED
    assert prod.default_status == DefaultSensorStatus.RUNNING


def test_a_stale_table_fails_its_freshness_check() -> None:
    """By FULLBAY_FRESHNESS_HOUR the newest complete day must have landed, per table."""
    env = {
        "FULLBAY_ENDPOINTS": "invoices,customer_payments",
        "FULLBAY_START_DATE": "2025-01-01",
        "FULLBAY_TIMEZONE": "UTC",
        "FULLBAY_FRESHNESS_HOUR": "9",
    }
    defs = load_definitions(env)
    checks = [c for c in defs.asset_checks or [] if "freshness" in c.node_def.name]
    probe = Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[define_asset_job("freshness", selection=AssetSelection.checks(*checks))],
        resources=defs.resources,
    )
    instance = DagsterInstance.ephemeral()
    for day in ("2025-03-11", "2025-03-12"):
        instance.report_runless_asset_event(AssetMaterialization("work_orders", partition=day))
    instance.report_runless_asset_event(AssetMaterialization("customer_payments", partition="2025-03-11"))

    def fresh(now: datetime) -> dict[str, bool]:
        with freeze_time(now):
            result = probe.resolve_job_def("freshness").execute_in_process(instance=instance)
        return {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}

    # 08:00 on the 13th: the deadline that has passed is the 12th's 09:00, so the 11th must be there.
    assert fresh(datetime(2025, 3, 13, 8, tzinfo=UTC)) == {"work_orders": True, "customer_payments": True}
    # 10:00: the 12th must be there; payments stopped at the 11th.
    assert fresh(datetime(2025, 3, 13, 10, tzinfo=UTC)) == {"work_orders": True, "customer_payments": False}
