"""Fixtures for the reliability tests (see harness.py for the machinery)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fullbay_dagster_tests.reliability import harness


@pytest.fixture(scope="session")
def clean_day() -> Callable[..., dict[str, str]]:
    """Business checksums of a clean run of harness.DAY (as of AS_OF) in a fresh
    database, one per distinct simulator setting, computed once per session."""
    cache: dict[tuple[tuple[str, Any], ...], dict[str, str]] = {}

    def reference(**sim: Any) -> dict[str, str]:
        key = tuple(sorted(sim.items()))
        if key not in cache:
            cache[key] = harness.clean_reference(harness.DAY, **sim)
        return cache[key]

    return reference


@pytest.fixture()
def scrubbed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No configuration leaking in from the caller's shell."""
    for name in (
        "DATABASE_URL",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "DB_SSLMODE",
        "DB_IAM_AUTH",
        "SECRETS_MANAGER_SECRET_NAME",
        "SCHEDULE_EXPRESSION",
        "ENVIRONMENT",
        "FULLBAY_TIMEZONE",
        "FULLBAY_TOKEN_TIMEZONE",
        "FULLBAY_IP_ECHO_URL",
        "FULLBAY_AUTH_FAIL_PATTERN",
        "FULLBAY_REQUEST_FAIL_PATTERN",
        "FULLBAY_EMPTY_FAIL_PATTERN",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FULLBAY_START_DATE", harness.START_DATE)
    yield monkeypatch
