"""Secret hygiene: the API key, the day's token and the database password never
appear in a log line, an exception text or traceback, a Dagster event (as stored,
serialized), run metadata, the bookkeeping table, or the process's output, in
runs that succeed and runs that fail.

The resources read the secrets from the environment through EnvVar, as deployed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dagster import EnvVar
from dagster_shared.serdes import serialize_value
from sqlalchemy import make_url, select

from fullbay_dagster.defs.resources import FullbayAPIResource
from fullbay_dagster.fullbay.auth import make_token, today_in
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import ingestion_metadata
from fullbay_dagster_tests.reliability import harness
from fullbay_dagster_tests.reliability.harness import DAY

API_KEY = "KEY-canary-7c1e5b2d-0f9a-4c3e-8d71-a6b4e2f09c35"
DB_PASSWORD = "PW-canary-3f8e1a7c9b52"
OTHER_IP = "203.0.113.77"


class Everything(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture()
def every_log_line() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def fullbay_from_env() -> FullbayAPIResource:
    return FullbayAPIResource(
        api_key=EnvVar("FULLBAY_API_KEY"),
        base_url=EnvVar("FULLBAY_API_BASE_URL"),
        public_ip=EnvVar("FULLBAY_PUBLIC_IP"),
    )


def everything_a_run_leaves(outcome: harness.RunOutcome) -> list[tuple[str, str]]:
    texts = [("step failures", outcome.error), ("metadata", repr(outcome.metadata))]
    for entry in outcome.log_entries:
        texts.append(("event log entry", serialize_value(entry)))
        texts.append(("event message", entry.message or ""))
    for event in outcome.result.all_events:
        texts.append(("event", repr(event)))
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            texts.append(("error with traceback", error.to_string()))
    texts.append(("stored run", serialize_value(outcome.stored_run)))
    return texts


def test_no_secret_reaches_logs_errors_events_metadata_or_tables(
    scrubbed_env: pytest.MonkeyPatch,
    every_log_line: Everything,
    capfd: pytest.CaptureFixture[str],
    pg_url: str,
) -> None:
    if make_url(harness.SERVER_URL).password:
        pytest.skip("needs a test server that accepts any password (trust auth) to plant one in the URL")
    database_url = make_url(pg_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
    unreachable_db = make_url(database_url).set(port=9).render_as_string(hide_password=False)
    days = [today_in("UTC") + timedelta(days=d) for d in (-1, 0, 1)]  # a run may cross midnight
    tokens = {make_token(API_KEY, day, ip) for day in days for ip in (harness.IP, OTHER_IP)}
    texts: list[tuple[str, str]] = []

    with Simulator(harness.sim_config(api_key=API_KEY, slow_seconds=1.0)) as simulator:
        base = {
            "FULLBAY_API_KEY": API_KEY,
            "FULLBAY_API_BASE_URL": simulator.url,
            "FULLBAY_PUBLIC_IP": harness.IP,
            "DATABASE_URL": database_url,
        }
        runs = {
            # succeeds after a 503, a reset mid-body, a read timeout and a 429
            "success": ({}, ("503", "reset", "timeout", "429")),  # with 5 attempts
            "api-unreachable": ({"FULLBAY_API_BASE_URL": "http://127.0.0.1:9/services"}, ()),
            "ip-not-allowed": ({"FULLBAY_PUBLIC_IP": OTHER_IP}, ()),
            "database-refuses": ({"DATABASE_URL": unreachable_db}, ()),
            "client-gives-up": ({}, ("malformed",) * 4),
        }
        outcomes = {}
        for name, (env, faults) in runs.items():
            for variable, value in {**base, **env}.items():
                scrubbed_env.setenv(variable, value)
            simulator.queue_faults(*faults)
            attempts = 5 if name == "success" else 2
            outcome = harness.run_job(
                DAY,
                resources={"fullbay": fullbay_from_env()},
                client={"max_attempts": attempts, "step_retries": 1, "read_timeout": 0.5},
            )
            outcomes[name] = outcome
            texts += [(f"{name}: {where}", text) for where, text in everything_a_run_leaves(outcome)]

    assert outcomes["success"].success and outcomes["success"].client_retries == 4
    for name in ("api-unreachable", "ip-not-allowed", "database-refuses", "client-gives-up"):
        assert not outcomes[name].success, name
    assert "ConnectionError" in outcomes["api-unreachable"].error
    assert "127.0.0.1:9/" in outcomes["database-refuses"].error

    engine = make_engine(pg_url)
    with engine.connect() as connection:
        texts.append(("ingestion_metadata", repr(connection.execute(select(ingestion_metadata)).all())))
    engine.dispose()
    texts += [("log line", line) for line in every_log_line.lines]
    output = capfd.readouterr()
    texts += [("stdout", output.out), ("stderr", output.err)]

    # Positive controls: the capture did see the texts that would carry the secrets.
    assert any("getInvoices.php" in line for line in every_log_line.lines), "urllib3/client lines were captured"
    assert any("key=***&token=***" in text for _, text in texts), "requests' URL-bearing error text was captured"
    for secret in (API_KEY, DB_PASSWORD, *tokens):
        leaks = [where for where, text in texts if secret in text]
        assert not leaks, f"{secret[:12]}... appears in: {sorted(set(leaks))[:10]}"
