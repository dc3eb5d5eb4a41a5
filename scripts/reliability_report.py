"""Run the API fault matrix and the full-size soak, print the figures and write
``docs/reliability.md``.

    python scripts/reliability_report.py                # 30 days x 100 invoices/day
    python scripts/reliability_report.py --per-day 40 --output /tmp/reliability.md

Needs a PostgreSQL server (FULLBAY_TEST_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres); every database it makes is dropped.
The simulator runs in process, over HTTP on 127.0.0.1. The machinery is shared with
the tests: ``fullbay_dagster_tests/reliability/harness.py``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fullbay_dagster_tests.reliability import harness  # noqa: E402
from fullbay_dagster_tests.reliability.harness import FAULT_CASES, CaseResult, SoakResult, SoakSpec  # noqa: E402

DEFAULT_OUTPUT = ROOT / "docs" / "reliability.md"
# Written by hand (the figures by scripts/type_chaos_report.py): kept as is across regenerations.
TOLERANCE_SECTION = (ROOT / "docs" / "tolerance_section.md").read_text()

# Bugs the reliability tests found; each is an xfail(strict=True) test that turns
# into a failure (XPASS) once the bug is fixed, so this list must be updated then.
FOUND_BUGS = (
    (
        "test_db_faults.py::test_an_older_answer_committing_last_does_not_revive_an_invoice_a_newer_answer_found_gone "
        "(and the Dagster variant ..._does_not_revive_a_voided_invoice)",
        "`loader.load_raw_day` / `_mark_vanished`: marking a row deleted does not record the answer's "
        "`fetched_at`, so an answer fetched *before* an invoice was voided, committing *after* the answer that "
        "found it gone, revives it (`deleted_at` back to NULL).",
    ),
    (
        "test_bad_input.py::test_an_amount_with_more_than_four_decimals_is_not_silently_rounded",
        '`records.decimal` / `Money = NUMERIC(16, 4)`: `total: "12.34567"` (or `1e-07`) is neither '
        "quarantined nor stored exactly: PostgreSQL rounds it to 12.3457 (0.0000).",
    ),
    (
        "test_bad_input.py::test_a_timestamp_at_the_end_of_time_is_a_field_issue_not_fatal",
        "`records.normalise_invoice` / `schema.Timestamp`: "
        '`created: "9999-12-31 23:00:00"` with a timezone west of UTC passes the record check (made in UTC) '
        "and overflows converting to UTC in `build_work_orders_day`: the whole day's build fails, every rerun.",
    ),
    (
        "test_bad_input.py::test_a_fallback_line_key_longer_than_the_column_is_not_fatal",
        "`records._lines`: a part (or correction) without `primaryKey` gets the key `<parent key>#<n>`; with a "
        "64-character parent key that exceeds `VARCHAR(64)` and the insert fails the whole day's build.",
    ),
    (
        "test_bad_input.py::test_a_primary_key_with_a_nul_is_quarantined_not_fatal",
        "`loader._quarantine_row`: a `primaryKey` containing NUL is quarantined, but written as is into "
        "`fullbay_quarantine.fullbay_id`, which PostgreSQL refuses: the exception fails the whole day's load.",
    ),
    (
        "test_bad_input.py::test_a_bad_database_url_fails_the_run_naming_the_variable[mysql, bad-port]",
        "`engine.normalise_url`: `mysql://...` says \"Unsupported database 'mysql'\" and a non-numeric port "
        "raises SQLAlchemy's bare `invalid literal for int()`; neither names `DATABASE_URL`.",
    ),
)


@dataclass
class Row:
    case: str
    fault: str
    expected: str
    outcome: str
    requests: int
    client_retries: int
    step_retries: int
    result: str
    ok: bool


def _first_line(message: str, limit: int = 170) -> str:
    """The root error of a step failure, compact: class and message, the request named once."""
    lines = [line for line in message.splitlines() if line.strip()]
    text = lines[-1] if lines else message
    text = re.sub(r"^[\w.]+: [\w.]+\.(\w+Error): ", r"\1: ", text)
    text = re.sub(r"(: )getInvoices\.php [\d-]+\.\.[\d-]+ page \d+: ", r"\1", text)
    text = re.sub(r"(after \d+ attempts): getInvoices\.php [\d-]+\.\.[\d-]+ page \d+:", r"\1:", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(result: CaseResult, clean: dict[str, dict[str, str]]) -> Row:
    case, outcome = result.case, result.outcome
    if case.recovers:
        per_day = case.sim.get("invoices_per_day", harness.PER_DAY)
        reference = clean[str(per_day)]
        expected_ids = sorted(r["primaryKey"] for r in harness.truth(harness.DAY, harness.DAY, per_day))
        equal = result.business == reference
        ok = outcome.success and equal and sorted(result.live_ids) == expected_ids
        verdict = f"{len(result.live_ids)} invoices, checksums {'=' if equal else '≠'} clean run"
    else:
        matches = bool(re.search(case.message, outcome.error, re.DOTALL))
        unchanged = result.after == result.before
        ok = (not outcome.success) and matches and unchanged
        verdict = f"{_first_line(outcome.error)}; tables {'unchanged' if unchanged else 'CHANGED'}"
    return Row(
        case=case.name,
        fault=case.description,
        expected="recover" if case.recovers else "fail clearly",
        outcome="recovered" if outcome.success else "failed",
        requests=len(result.requests),
        client_retries=outcome.client_retries,
        step_retries=outcome.step_retries,
        result=verdict,
        ok=ok,
    )


def run_matrix() -> list[Row]:
    clean = {str(n): harness.clean_reference(harness.DAY, invoices_per_day=n) for n in (harness.PER_DAY, 0)}
    rows = []
    for case in FAULT_CASES:
        row = judge(harness.run_fault_case(case), clean)
        rows.append(row)
        print(
            f"  {row.case:<20} {row.outcome:<9} requests={row.requests:<3} client_retries={row.client_retries} "
            f"step_retries={row.step_retries}  {'PASS' if row.ok else 'FAIL'}  {row.result}",
            flush=True,
        )
    return rows


def soak_ok(result: SoakResult) -> bool:
    return (
        result.outcome.success
        and result.checksums_equal
        and (result.missing, result.extra, result.duplicates) == (0, 0, 0)
        and len(result.expected_ids) == result.spec.days * result.spec.per_day
    )


def soak_figures(result: SoakResult, seconds: float) -> list[tuple[str, str]]:
    spec = result.spec
    injected = sum(result.faults.values())
    return [
        ("range", f"{spec.first} .. {spec.last} ({spec.days} days, one run, 7-day windows, 2 in flight)"),
        ("invoices per day / page size", f"{spec.per_day} / {spec.page_size}"),
        ("random fault rate / seed", f"{spec.fault_rate:.0%} / {spec.fault_seed}"),
        ("requests (clean run needed)", f"{result.requests} ({result.clean_requests})"),
        (
            "faults injected",
            f"{injected} ({len(harness.SOAK_OPENING_FAULTS)} scripted 503s at the start, the rest random): "
            + ", ".join(f"{k} {v}" for k, v in result.faults.items()),
        ),
        ("client retries", str(result.outcome.client_retries)),
        ("Dagster step retries", str(result.outcome.step_retries)),
        ("records (ground truth)", str(len(result.expected_ids))),
        ("work orders / lines loaded", f"{len(result.work_order_ids)} / {result.lines}"),
        ("missing", str(result.missing)),
        ("extra", str(result.extra)),
        ("duplicates", str(result.duplicates)),
        ("checksums equal to a clean run (4 tables)", "yes" if result.checksums_equal else "NO"),
        ("wall time", f"{seconds:.0f} s"),
    ]


def markdown(rows: list[Row], soak: list[tuple[str, str]] | None, ok: bool, command: str) -> str:
    out = [
        "# Reliability: does it lose anything?",
        "",
        f"Generated by `scripts/reliability_report.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        f"Overall: **{'all cases as expected' if ok else 'SOME CASES NOT AS EXPECTED'}**.",
        "",
        "The claim: whatever the API or the database does, every Fullbay record lands exactly once, a "
        "partition is either fully loaded or untouched, and a rerun converges. Everything below runs the real "
        "Dagster job (`fullbay_daily_job`, in process) against the simulator over HTTP and a real PostgreSQL.",
        "",
        "## API fault matrix",
        "",
        f"Each case: day {harness.DAY} ({harness.PER_DAY} invoices, pages of {harness.PAGE_SIZE}) was loaded "
        "before with earlier balances; a run of the same day then meets the fault. *Recover* means the run "
        "succeeds and every table equals a clean run of the day in a fresh database (checksums without "
        "bookkeeping columns such as `last_seen_at`, `fetched_at`, `updated_at`). *Fail clearly* means the run "
        "fails with the message shown and every column of every table is exactly as before. The client is "
        "tuned for tests (`max_attempts=4`, `retry_after_cap=0.05`, `step_retries=2`) unless the case says "
        "otherwise.",
        "",
        "| case | fault | expected | outcome | requests | client retries | step retries | result | ok |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        result = r.result.replace("|", "\\|")
        out.append(
            f"| `{r.case}` | {r.fault} | {r.expected} | {r.outcome} | {r.requests} | {r.client_retries} | "
            f"{r.step_retries} | {result} | {'✓' if r.ok else '✗'} |"
        )
    if soak is not None:
        out += [
            "",
            "## Soak: a 30-day backfill with random faults",
            "",
            "One run over the whole range; the simulator faults ~10 % of requests at random with every transient "
            f"kind ({', '.join(harness.TRANSIENT_KINDS)}). The client makes 2 attempts per request, so it gives "
            "up now and then and Dagster retries the fetch step (`step_retries=25`, `step_retry_wait=0.05`). "
            "The result is compared with a clean backfill of the same range in another database and with the "
            "simulator's ground truth (`synthetic.invoices_for_day`).",
            "",
            "| figure | value |",
            "|---|---|",
            *[f"| {name} | {value} |" for name, value in soak],
            "",
            "Why many more requests than a clean run: a Dagster step retry fetches the whole range again (what "
            "the failed attempt had spooled is discarded), and a window whose data moved during paging "
            "(`grow`, `shift`) is fetched again from page 1. With 2 client attempts a page fails for good about "
            "once in 100 at a 10 % fault rate, so a pass over a few hundred pages rarely completes; with the "
            "default `max_attempts=6` that is about once in a million pages.",
        ]
    out += [
        "",
        TOLERANCE_SECTION,
        "## Also tested (`fullbay_dagster_tests/reliability/`)",
        "",
        "- **Database faults** (`test_db_faults.py`): the loader's connection terminated "
        "(`pg_terminate_backend`) in the middle of a raw load (after its first 1000-record batch), in the middle "
        "of building work orders: the load raises `OperationalError`, the day is exactly as before, and a "
        "rerun equals a clean load. Inside a Dagster run's day-2 transaction: the day rolls back, Dagster "
        "retries the step (a lost connection, by SQLSTATE; a statement timeout or a full disk is not "
        "retried), and the run ends as a clean load of both days. An unreachable "
        "database configured by `DB_HOST`/`DB_PORT`/`DB_PASSWORD` fails before calling Fullbay with a message "
        "naming host and port and not the password.",
        "- **Concurrency**: two runs of the same day at once, and overlapping backfills (days 1-10 fetched "
        "earlier, 5-14 later) loading at the same time: no duplicate, no lost update, the newest answer wins, "
        "and the result equals clean runs. Serialisation: each day is loaded in one transaction per table "
        "that first takes a transaction-scoped PostgreSQL advisory lock for (table, day) "
        "(`day_load.lock_partition`); the other run waits, then sees the committed rows. A row is never "
        "overwritten by an answer fetched earlier than the one that wrote it (`fetched_at`), also when the "
        "earlier-fetching Dagster run commits last, and a deletion records its answer's `fetched_at` too, so "
        "an older answer cannot revive an invoice a newer one found gone.",
        "- **Bad input** (`test_bad_input.py`): hypothesis mutates valid synthetic invoices (missing/null/"
        "wrong-type nested objects, numbers as strings, empty strings, control characters and NUL, lone "
        "surrogates, 1 MB text, NaN/Infinity, negative and huge amounts, impossible dates, bad and duplicate "
        "primary keys, non-objects); every record either loads with exactly its amounts (NULL where they do "
        "not parse) or is quarantined with a reason, never both or neither; only identity failures and "
        "unstorable JSON quarantine, and the valid records of the batch all load. Through Dagster, bad records "
        "make `no_quarantined_records` warn and `quarantine_below_one_percent` fail (ERROR), and are counted in "
        "the run metadata. Bad "
        "`FULLBAY_START_DATE`, `FULLBAY_TIMEZONE`, `SCHEDULE_EXPRESSION`, `FULLBAY_API_BASE_URL` and "
        "`DATABASE_URL` each give one message naming the variable.",
        "- **Secret hygiene** (`test_secrets.py`): across succeeding and failing runs (API unreachable, IP not "
        "allowed, database refusing, client giving up), the API key, the day's token and the database password "
        "appear in no log line (root logger at DEBUG, urllib3 included), error text or traceback, serialized "
        "Dagster event, run metadata, `ingestion_metadata` row, or the process output.",
        "",
        "## Bugs this suite found (fixed; the tests that found them now pass)",
        "",
        *[f"- {text} — `{test}`" for test, text in FOUND_BUGS],
        "",
        "## Rerun",
        "",
        "```bash",
        command,
        "pytest fullbay_dagster_tests/reliability            # the tests (soak: 30 days x 3 invoices)",
        "FULLBAY_SOAK_INVOICES_PER_DAY=100 FULLBAY_SOAK_PAGE_SIZE=20 pytest -k soak fullbay_dagster_tests/reliability",
        "FULLBAY_PROPERTY_EXAMPLES=1000 pytest -k every_record fullbay_dagster_tests/reliability",
        "FULLBAY_PROPERTY_EXAMPLES=500 pytest -k type_chaos fullbay_dagster_tests/reliability",
        "python scripts/type_chaos_report.py                # the type-chaos table above",
        "```",
        "",
        "The database server comes from `FULLBAY_TEST_DATABASE_URL` (default "
        "`postgresql://postgres@127.0.0.1:5432/postgres`); every database made is dropped afterwards.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100, help="invoices per day in the soak")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--fault-seed", type=int, default=SoakSpec.fault_seed)
    parser.add_argument("--no-soak", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.CRITICAL)
    harness.CONSOLE_LOG_LEVEL["level"] = "CRITICAL"  # the runs' own logs stay in their event logs
    warnings.simplefilter("ignore")

    print(f"API fault matrix ({len(FAULT_CASES)} cases, day {harness.DAY}):", flush=True)
    rows = run_matrix()
    ok = all(r.ok for r in rows)
    soak = None
    if not args.no_soak:
        spec = SoakSpec(
            days=args.days,
            per_day=args.per_day,
            page_size=args.page_size,
            fault_rate=args.fault_rate,
            fault_seed=args.fault_seed,
        )
        print(f"Soak ({spec.days} days x {spec.per_day} invoices/day, {spec.fault_rate:.0%} faults):", flush=True)
        started = time.monotonic()
        result = harness.run_soak(spec)
        soak = soak_figures(result, time.monotonic() - started)
        ok = ok and soak_ok(result)
        for name, value in soak:
            print(f"  {name}: {value}")
        if not result.outcome.success:
            print(f"  run failed: {result.outcome.error}")
    command = "python scripts/reliability_report.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(rows, soak, ok, command), encoding="utf-8")
    print(f"{'All as expected' if ok else 'NOT ALL AS EXPECTED'}; wrote {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
