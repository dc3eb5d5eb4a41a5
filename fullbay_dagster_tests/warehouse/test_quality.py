"""warehouse.quality against PostgreSQL: what the quality checks report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse import quality
from fullbay_dagster.warehouse.loader import build_work_orders_day, load_raw_day
from fullbay_dagster.warehouse.runs import RunLog

DAY = date(2025, 3, 12)
T1 = datetime(2025, 3, 20, 12, tzinfo=UTC)
ZONE = ZoneInfo("America/Chicago")


def load(engine: Engine, records: list, now: datetime, run_id: str = "run-1") -> None:  # type: ignore[type-arg]
    run_log = RunLog(engine, run_id)
    run_log.start([DAY], "sim")
    raw = load_raw_day(engine, DAY, records, now=now, run_id=run_id)
    run_log.record(DAY, api_record_count=raw.processed, records_quarantined=raw.quarantined)
    build_work_orders_day(engine, DAY, zone=ZONE, source="s", now=now, run_id=run_id)


def test_more_than_one_percent_quarantined_is_reported_per_day(pg_engine: Engine) -> None:
    records = invoices_for_day(5, DAY, 50, DAY)
    records[0]["primaryKey"] = None  # cannot be placed
    load(pg_engine, records, T1)
    share = quality.quarantine_share(pg_engine, DAY)
    assert share is not None
    assert (share.api_records, share.quarantined) == (50, 1)
    assert share.share > quality.MAX_QUARANTINED_SHARE


def test_field_issue_summary_folds_paths_and_gives_examples(pg_engine: Engine) -> None:
    records = invoices_for_day(5, DAY, 6, DAY)
    for record in records[:4]:
        record["ServiceOrder"]["Complaints"][0]["Corrections"][0]["laborTotal"] = {"oops": 1}
    records[5]["exported"] = "maybe"
    load(pg_engine, records, T1)
    summary = quality.field_issue_summary(pg_engine, DAY, DAY)
    assert (summary["total"], summary["invoices"]) == (5, 5)
    top = summary["top"][0]
    assert top["field_path"] == "ServiceOrder.Complaints[].Corrections[].laborTotal"
    assert top["issues"] == 4 and '{"oops": 1}' in top["example_values"]
    assert records[0]["primaryKey"] in top["invoice_ids"]


def test_schema_drift_reports_unknown_paths_new_types_and_vanished_paths(pg_engine: Engine) -> None:
    records = invoices_for_day(5, DAY, 3, DAY)
    load(pg_engine, records, T1)
    assert quality.schema_drift(pg_engine).findings == []
    later = invoices_for_day(5, DAY, 3, DAY)
    for record in later:
        record["brandNewField"] = 1
        record["total"] = [record["total"]]
        del record["suppliesTotal"]
    load(pg_engine, later, T1 + timedelta(days=10), run_id="run-2")
    drift = quality.schema_drift(pg_engine)
    assert [f["field_path"] for f in drift.unknown] == ["brandNewField"]
    assert [f["field_path"] for f in drift.new_types] == ["total"]
    assert [f["field_path"] for f in drift.gone] == ["suppliesTotal"]
