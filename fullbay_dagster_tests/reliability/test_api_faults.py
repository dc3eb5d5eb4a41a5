"""API faults, through real Dagster runs of the job against the simulator over HTTP.

Each case: the day was loaded before (balances as of the next day); a run of the
same day as of AS_OF meets one fault. Either it recovers and the warehouse equals a
clean run of the day in another, fresh database (checksums of every table without
bookkeeping columns), or it fails with a clear message and the tables are exactly
as they were (every column). Then a soak: a 30-day backfill with ~10 % of requests
faulted at random, which must equal a clean backfill exactly.

Soak size: FULLBAY_SOAK_DAYS, FULLBAY_SOAK_INVOICES_PER_DAY, FULLBAY_SOAK_PAGE_SIZE,
FULLBAY_SOAK_FAULT_RATE, FULLBAY_SOAK_FAULT_SEED (defaults: 30 days x 3 invoices,
pages of 5, 10 %). The full-size figures come from ``scripts/reliability_report.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from fullbay_dagster.fullbay.simulator import ALL_FAULT_KINDS
from fullbay_dagster_tests.reliability import harness
from fullbay_dagster_tests.reliability.harness import FAULT_CASES, FaultCase, SoakSpec

PAGES = -(-harness.PER_DAY // harness.PAGE_SIZE)
ALL_CHECKS = {
    "no_quarantined_records",
    "raw_and_normalised_agree",
    "line_sums_match_totals",
    "rows_match_api_count",
    "no_field_issues",
    "quarantine_below_one_percent",
    "schema_as_known",
}


def test_the_matrix_covers_every_fault_kind_the_simulator_has() -> None:
    covered = {kind for case in FAULT_CASES for kind in case.faults}
    assert covered == set(ALL_FAULT_KINDS)


@pytest.mark.parametrize("case", [c for c in FAULT_CASES if c.recovers], ids=lambda c: c.name)
def test_a_transient_fault_is_recovered_with_exactly_the_clean_data(
    case: FaultCase, clean_day: Callable[..., dict[str, str]]
) -> None:
    result = harness.run_fault_case(case)
    outcome = result.outcome
    assert outcome.success, outcome.error
    # The data: as a clean run of the same day in a fresh database, nothing missing or doubled.
    per_day = case.sim.get("invoices_per_day", harness.PER_DAY)
    assert result.business == clean_day(**{k: v for k, v in case.sim.items() if k == "invoices_per_day"})
    expected_ids = sorted(r["primaryKey"] for r in harness.truth(harness.DAY, harness.DAY, per_day))
    assert sorted(result.live_ids) == expected_ids
    assert result.quarantined == 0
    assert {name for name, (passed, _) in outcome.checks.items() if passed} == ALL_CHECKS
    assert result.bookkeeping == [("success", None)]
    # The requests: every page once, plus one per fault (or the window again for data faults).
    pages = -(-per_day // harness.PAGE_SIZE) or 1
    expected = case.expected_requests(pages) if case.expected_requests else pages + len(case.faults)
    assert len(result.requests) == expected
    assert [r["fault"] for r in result.requests if r["fault"]] == list(case.faults)
    client_retries = 0 if case.expected_requests else len(case.faults)
    assert outcome.metadata["raw_work_orders"]["run_api_retries"] == client_retries
    assert outcome.step_retries == 0


@pytest.mark.parametrize("case", [c for c in FAULT_CASES if not c.recovers], ids=lambda c: c.name)
def test_a_fault_that_cannot_be_recovered_fails_clearly_and_commits_nothing(case: FaultCase) -> None:
    result = harness.run_fault_case(case)
    outcome = result.outcome
    assert not outcome.success
    assert re.search(case.message, outcome.error, re.DOTALL), outcome.error
    # Nothing of the partition changed: every column of every table, bookkeeping included.
    assert result.after == result.before
    assert len(result.live_ids) == harness.PER_DAY
    assert case.expected_requests is not None
    assert len(result.requests) == case.expected_requests(PAGES)
    [(status, error)] = result.bookkeeping
    assert status == "failed" and error
    if case.name.startswith("503"):
        assert outcome.step_retries == case.client["step_retries"]  # Dagster tried again, then gave up
    else:
        assert outcome.step_retries == 0  # permanent: no Dagster retry either
        assert harness.KEY not in outcome.error


def test_a_huge_retry_after_is_capped() -> None:
    [case] = [c for c in FAULT_CASES if c.name == "429-huge"]
    result = harness.run_fault_case(case)
    assert result.outcome.success
    [delay] = result.outcome.retry_delays  # as the client announced it: cap + at most 1 s of jitter
    cap = case.client["retry_after_cap"]
    assert cap <= delay <= cap + 1.0


def test_a_modest_retry_after_is_honoured() -> None:
    [case] = [c for c in FAULT_CASES if c.name == "429"]
    result = harness.run_fault_case(case)
    assert result.outcome.success
    [delay] = result.outcome.retry_delays
    assert delay >= 1.0  # the simulator's Retry-After: 1


def test_soak_backfill_with_random_faults_equals_a_clean_backfill() -> None:
    spec = SoakSpec.from_env()
    assert spec.days >= 8, "the soak must span more than one 7-day window"
    result = harness.run_soak(spec)
    assert result.outcome.success, result.outcome.error
    assert result.checksums_equal, (result.checksums, result.clean_checksums)
    assert len(result.expected_ids) == spec.days * spec.per_day
    assert (result.missing, result.extra, result.duplicates) == (0, 0, 0)
    assert sorted(result.work_order_ids) == sorted(result.expected_ids)
    # The faults happened, and were survived by both layers of retry.
    random_faults = sum(result.faults.values()) - len(harness.SOAK_OPENING_FAULTS)
    assert random_faults > 0
    assert result.requests > result.clean_requests
    assert result.outcome.client_retries > 0
    assert result.outcome.step_retries >= 1
