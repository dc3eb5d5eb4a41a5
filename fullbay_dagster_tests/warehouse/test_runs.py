"""The run log: the only writer of ``ingestion_metadata``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import DagsterExecutionInterruptedError, build_asset_context
from sqlalchemy import Engine, func, select, update

from fullbay_dagster.defs.assets import TERMINATED, recorded_failure
from fullbay_dagster.warehouse.runs import ABANDONED, UNKNOWN_RUN_ABANDONED_AFTER, RunLog
from fullbay_dagster.warehouse.schema import ingestion_metadata

DAY = date(2025, 3, 12)
DAYS = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ingestion_metadata)).scalar_one())


def test_rows_move_forward_only(pg_engine: Engine) -> None:
    a, b = RunLog(pg_engine, "run-a"), RunLog(pg_engine, "run-b")
    a.start(DAYS, "getInvoices.php")
    b.start([DAY], "getInvoices.php")

    rows = a.rows()
    assert [r["partition_key"] for r in rows] == [d.isoformat() for d in DAYS]
    assert [r["execution_id"] for r in rows] == [f"run-a:{d.isoformat()}" for d in DAYS]
    assert {r["status"] for r in rows} == {"running"}
    assert all(r["end_time"] is None and r["records_processed"] == 0 for r in rows)
    assert {r["api_endpoint"] for r in rows} == {"getInvoices.php"}

    a.record(DAY, records_processed=25, records_inserted=20, records_updated=5)
    a.add_quarantined(DAY, 2)
    a.add_quarantined(DAY, 1)
    a.finish([DAY])
    a.fail(DAYS, "x" * 5000)

    first, second, third = a.rows()
    assert (first["status"], first["error_message"]) == ("success", None)
    assert first["end_time"] is not None
    assert (first["records_processed"], first["records_inserted"], first["records_updated"]) == (25, 20, 5)
    assert first["records_quarantined"] == 3
    for row in (second, third):
        assert (row["status"], row["error_message"]) == ("failed", "x" * 4000)
    (other,) = b.rows()
    assert other["status"] == "running" and other["error_message"] is None, "fail() touches only its run's rows"

    # A step retry starts again: nothing finished goes back to running, counts stay.
    a.start(DAYS, "getInvoices.php")
    a.record(DAY, records_processed=0)
    assert [r["status"] for r in a.rows()] == ["success", "failed", "failed"]
    assert a.rows()[0]["records_processed"] == 25
    # A second fail() does not overwrite rows that are no longer running.
    a.fail(DAYS, "later error")
    assert [r["error_message"] for r in a.rows()] == [None, "x" * 4000, "x" * 4000]
    assert _rows(pg_engine) == 4


def test_a_retried_attempt_notes_its_cause_and_stays_running(pg_engine: Engine) -> None:
    log = RunLog(pg_engine, "run-r")
    log.start([DAY], "getInvoices.php")
    log.note([DAY], "attempt 1 failed, retrying: FullbayGaveUpError: 503")
    [row] = log.rows()
    assert (row["status"], row["error_message"]) == ("running", "attempt 1 failed, retrying: FullbayGaveUpError: 503")
    log.finish([DAY])
    [row] = log.rows()
    assert (row["status"], row["error_message"]) == ("success", None)


def test_a_rerun_closes_rows_of_runs_that_are_gone(pg_engine: Engine) -> None:
    RunLog(pg_engine, "dead").start([DAY], "getInvoices.php")
    RunLog(pg_engine, "alive").start([DAY + timedelta(days=1)], "getInvoices.php")
    rerun = RunLog(pg_engine, "rerun")
    closed = rerun.close_abandoned(DAYS, is_alive=lambda run_id: run_id == "alive")
    assert closed == ["dead"]
    [dead] = RunLog(pg_engine, "dead").rows()
    assert (dead["status"], dead["error_message"]) == ("failed", ABANDONED)
    [alive] = RunLog(pg_engine, "alive").rows()
    assert alive["status"] == "running"


def test_a_run_that_failed_before_its_first_step_gets_rows(pg_engine: Engine) -> None:
    log = RunLog(pg_engine, "early")
    log.fail_run(DAYS[:2], "DagsterExecutionInterruptedError", {"invoices": "getInvoices.php"})
    assert [(r["status"], r["error_message"]) for r in log.rows()] == [
        ("failed", "DagsterExecutionInterruptedError")
    ] * 2


def test_each_endpoint_has_its_own_rows_and_invoices_keep_their_identity(pg_engine: Engine) -> None:
    invoices, payments = RunLog(pg_engine, "run-e"), RunLog(pg_engine, "run-e", "customer_payments")
    invoices.start([DAY], "getInvoices.php")
    payments.start([DAY], "getCustomerPayments.php")
    payments.record(DAY, api_record_count=7, records_duplicated=1)
    payments.fail([DAY], "boom")

    [invoice_row], [payment_row] = invoices.rows(), payments.rows()
    assert (invoice_row["execution_id"], invoice_row["endpoint"]) == (f"run-e:{DAY}", "invoices")
    assert (payment_row["execution_id"], payment_row["endpoint"]) == (
        f"run-e:customer_payments:{DAY}",
        "customer_payments",
    )
    assert (payment_row["status"], payment_row["api_record_count"], payment_row["records_duplicated"]) == (
        "failed",
        7,
        1,
    )
    assert invoice_row["status"] == "running", "an endpoint's failure leaves the other endpoints' rows alone"


def test_killed_run_cleanup_covers_every_endpoint(pg_engine: Engine) -> None:
    RunLog(pg_engine, "dead", "vendor_bills").start([DAY], "getVendorBills.php")
    assert RunLog(pg_engine, "rerun", "adjustments").close_abandoned([DAY], is_alive=lambda run_id: False) == ["dead"]
    [closed] = RunLog(pg_engine, "dead", "vendor_bills").rows()
    assert (closed["status"], closed["error_message"]) == ("failed", ABANDONED)

    timed_out = RunLog(pg_engine, "timed-out")
    RunLog(pg_engine, "timed-out", "customer_payments").start([DAY], "getCustomerPayments.php")
    timed_out.fail_run([DAY], "Run timed out", {"invoices": "getInvoices.php", "counter_sales": "getCounterSales.php"})
    for endpoint in ("invoices", "customer_payments", "counter_sales"):
        [row] = RunLog(pg_engine, "timed-out", endpoint).rows()
        assert (row["status"], row["error_message"]) == ("failed", "Run timed out"), endpoint


def test_rows_of_a_run_another_instance_owns_are_closed_only_when_no_run_could_still_be_going(
    pg_engine: Engine,
) -> None:
    """Another DAGSTER_HOME's run, or the standalone Lambda's, is unknown here: it may be
    writing right now, and its own success would then never be recorded."""
    RunLog(pg_engine, "elsewhere").start([DAY], "getInvoices.php")
    rerun = RunLog(pg_engine, "rerun")
    assert rerun.close_abandoned([DAY], is_alive=lambda run_id: None) == []
    assert RunLog(pg_engine, "elsewhere").rows()[0]["status"] == "running"
    long_ago = datetime.now(UTC) - UNKNOWN_RUN_ABANDONED_AFTER - timedelta(minutes=1)
    with pg_engine.begin() as connection:
        connection.execute(update(ingestion_metadata).values(start_time=long_ago))
    assert rerun.close_abandoned([DAY], is_alive=lambda run_id: None) == ["elsewhere"]
    [row] = RunLog(pg_engine, "elsewhere").rows()
    assert (row["status"], row["error_message"]) == ("failed", ABANDONED)


def test_a_terminated_step_fails_its_days_rows_with_the_reason(pg_engine: Engine) -> None:
    """Terminating a run (or canceling its backfill) interrupts its step with a
    BaseException: its rows say so at once instead of staying `running`."""
    log = RunLog(pg_engine, "run-t")
    log.start(DAYS, "getInvoices.php")
    with pytest.raises(DagsterExecutionInterruptedError), recorded_failure(build_asset_context(), log, DAYS):
        raise DagsterExecutionInterruptedError
    assert [(row["status"], row["error_message"]) for row in log.rows()] == [("failed", TERMINATED)] * 3
