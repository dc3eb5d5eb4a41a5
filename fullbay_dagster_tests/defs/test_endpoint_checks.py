"""Each endpoint's day checks judge what the warehouse holds against what the run log
says the API returned: they pass on a clean day and fail when the day is wrong."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, update

from fullbay_dagster.defs.checks import evaluate_endpoint_day
from fullbay_dagster.fullbay.endpoints import CUSTOMER_PAYMENTS
from fullbay_dagster.warehouse.endpoint_loader import build_endpoint_day, load_endpoint_raw_day
from fullbay_dagster.warehouse.runs import RunLog
from fullbay_dagster.warehouse.schema import endpoint_tables

DAY = date(2025, 3, 12)


def _payment(key: str, amount: str = "10.00") -> dict[str, Any]:
    return {"primaryKey": key, "amount": amount, "Customer": {"customerId": "c1", "title": "Acme"}}


def _load(engine: Engine, records: list[Any], run_id: str = "run-1") -> None:
    """What the raw and normalise steps do for one day, run log included."""
    log = RunLog(engine, run_id, CUSTOMER_PAYMENTS.name)
    log.start([DAY], "getCustomerPayments.php")
    counts = load_endpoint_raw_day(engine, CUSTOMER_PAYMENTS, DAY, records, run_id=run_id)
    log.record(
        DAY,
        records_processed=counts.processed,
        api_record_count=counts.processed,
        records_quarantined=counts.quarantined,
        records_duplicated=counts.duplicates,
    )
    build_endpoint_day(engine, CUSTOMER_PAYMENTS, DAY, run_id=run_id)
    log.finish([DAY])


def _outcomes(engine: Engine) -> dict[str, bool]:
    return {key.name: passed for key, (passed, _) in evaluate_endpoint_day(engine, CUSTOMER_PAYMENTS, DAY).items()}


def test_a_clean_day_passes_every_check(pg_engine: Engine) -> None:
    _load(pg_engine, [_payment("p1"), _payment("p2")])
    assert _outcomes(pg_engine) == {"keys_unique": True, "rows_match_api_count": True, "no_quarantined_records": True}


def test_a_day_no_run_has_counted_fails(pg_engine: Engine) -> None:
    outcomes = evaluate_endpoint_day(pg_engine, CUSTOMER_PAYMENTS, DAY)
    assert not any(passed for key, (passed, _) in outcomes.items() if key.name != "no_quarantined_records")
    [problem] = {m["problem"] for key, (_, m) in outcomes.items() if "problem" in m}
    assert problem == "no run has recorded what the API returned for this day"


def test_a_key_sent_twice_fails_keys_unique(pg_engine: Engine) -> None:
    _load(pg_engine, [_payment("p1"), _payment("p2"), _payment("p1", amount="12.00")])
    outcomes = evaluate_endpoint_day(pg_engine, CUSTOMER_PAYMENTS, DAY)
    by_name = {key.name: (passed, metadata) for key, (passed, metadata) in outcomes.items()}
    assert by_name["keys_unique"][0] is False and by_name["keys_unique"][1]["repeated_in_answer"] == 1
    assert by_name["rows_match_api_count"][0] is True, "the key's latest version is loaded once"


def test_rows_missing_from_the_typed_table_fail_the_api_count(pg_engine: Engine) -> None:
    _load(pg_engine, [_payment("p1"), _payment("p2"), _payment("p3")])
    typed = endpoint_tables[CUSTOMER_PAYMENTS.name]
    with pg_engine.begin() as connection:  # a row lost behind the pipeline's back
        connection.execute(update(typed).where(typed.c.fullbay_id == "p2").values(deleted_at=typed.c.updated_at))
    outcomes = evaluate_endpoint_day(pg_engine, CUSTOMER_PAYMENTS, DAY)
    [(passed, metadata)] = [v for k, v in outcomes.items() if k.name == "rows_match_api_count"]
    assert not passed
    assert (metadata["live_rows"], metadata["api_records"], metadata["expected_rows"]) == (2, 3, 3)


def test_a_quarantined_record_fails_its_check_but_is_not_counted_missing(pg_engine: Engine) -> None:
    _load(pg_engine, [_payment("p1"), {"amount": "5.00"}])  # no primaryKey: cannot be placed
    assert _outcomes(pg_engine) == {"keys_unique": True, "rows_match_api_count": True, "no_quarantined_records": False}


def test_the_latest_run_is_the_one_compared(pg_engine: Engine) -> None:
    _load(pg_engine, [_payment("p1"), _payment("p2")], run_id="run-1")
    _load(pg_engine, [_payment("p1")], run_id="run-2")  # p2 vanished from the answer: deleted
    outcomes = evaluate_endpoint_day(pg_engine, CUSTOMER_PAYMENTS, DAY)
    [(passed, metadata)] = [v for k, v in outcomes.items() if k.name == "rows_match_api_count"]
    assert passed and metadata["run_compared"] == "run-2" and metadata["live_rows"] == 1
