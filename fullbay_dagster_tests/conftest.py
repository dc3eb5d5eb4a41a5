"""Shared fixtures: a fresh PostgreSQL database per test module and a live simulator.

The server comes from FULLBAY_TEST_DATABASE_URL (default: the local server with
trust auth); every database made here is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from fullbay_dagster.fullbay import auth
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import make_engine, normalise_url

# The Dagster tests written for invoices run the daily job with invoices only (before
# the definitions are first imported); the endpoint tests choose their endpoints with
# load_definitions({"FULLBAY_ENDPOINTS": ...}).
os.environ.setdefault("FULLBAY_ENDPOINTS", "invoices")

SERVER_URL = os.environ.get("FULLBAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_KEY = "test-key-7f3c9a52-1b2d-4e8f-9a0b-c1d2e3f4a5b6"


def _admin_engine() -> Engine:
    return create_engine(normalise_url(SERVER_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(autouse=True)
def _away_from_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process clients and simulators see the real day at 12:07 UTC: one token day
    for both, in any timezone, and never within minutes of midnight in any (offsets are
    whole quarter hours), where a refused call is retried with the other day's token
    and a test counting requests would depend on the hour it runs."""
    real = auth.current_instant
    monkeypatch.setattr(auth, "current_instant", lambda: datetime.combine(real().date(), time(12, 7), UTC))


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"fullbay_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def simulator() -> Iterator[Simulator]:
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=12, page_size=5, expected_ip="127.0.0.1", seed=3)
    with Simulator(config) as running:
        yield running


@pytest.fixture()
def project_env(monkeypatch: pytest.MonkeyPatch, simulator: Simulator, pg_url: str) -> dict[str, str]:
    """A user's local environment for the project: key, simulator, a fresh database;
    nothing left over from the shell (DB_* parts, a schedule)."""
    values = {
        "DATABASE_URL": pg_url,
        "FULLBAY_API_KEY": TEST_KEY,
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
    }
    for name in ("DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_PORT", "DB_SSLMODE", "SCHEDULE_EXPRESSION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
