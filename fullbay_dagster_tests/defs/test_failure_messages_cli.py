"""A user's first run with a wrong setting, through the real CLI: the run fails at
once with a message naming the variable, and nothing of a password is printed or
stored anywhere (console, compute logs, run storage)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from fullbay_dagster.fullbay.endpoints import ENDPOINTS
from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster.warehouse.schema import ingestion_metadata
from fullbay_dagster_tests.conftest import TEST_KEY

DAY = "2025-03-12"


def materialize(tmp_path: Path, **env: str) -> tuple[int, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "FULLBAY_", "DATABASE_URL"))}
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster", "--select", "*",
         "--partition", DAY],
        env={**clean, "DAGSTER_HOME": str(home), "FULLBAY_API_KEY": TEST_KEY, "FULLBAY_PUBLIC_IP": "127.0.0.1",
             "FULLBAY_START_DATE": "2025-01-01", **env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return completed.returncode, completed.stdout + completed.stderr


def everything_stored(tmp_path: Path) -> str:
    """The instance's files: run and event storage (SQLite), compute logs."""
    return "\n".join(
        path.read_bytes().decode("utf-8", "replace")
        for path in (tmp_path / "dagster_home").rglob("*")
        if path.is_file()
    )


def test_an_unreachable_api_base_url_fails_the_run_once_naming_the_variable(tmp_path: Path, pg_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, output = materialize(tmp_path, DATABASE_URL=pg_url, FULLBAY_API_BASE_URL=f"http://127.0.0.1:{port}/services")
    assert code != 0
    assert f"FULLBAY_API_BASE_URL (http://127.0.0.1:{port}/services) cannot be reached" in output
    assert "RetryRequested" not in output and "asking Dagster to retry" not in output  # failed at once
    engine = make_engine(pg_url)
    with engine.connect() as connection:
        rows = connection.execute(select(ingestion_metadata)).all()
    engine.dispose()
    # every endpoint (FULLBAY_ENDPOINTS unset: all seven) failed its day with the cause
    assert sorted(row.endpoint for row in rows) == sorted(ENDPOINTS)
    assert all(row.status == "failed" and "FULLBAY_API_BASE_URL" in row.error_message for row in rows)
    assert TEST_KEY not in output + everything_stored(tmp_path)


def test_a_raw_at_sign_in_the_database_password_is_refused_and_never_echoed(tmp_path: Path) -> None:
    url = "postgresql://fullbay:Tr0ub4dor@horse@db-7f3a.internal.example:5432/warehouse_x"
    code, output = materialize(tmp_path, DATABASE_URL=url, FULLBAY_API_BASE_URL="http://127.0.0.1:9/services")
    assert code != 0
    assert "DATABASE_URL has a raw '@'" in output and "Percent-encode" in output
    stored = everything_stored(tmp_path)
    for piece in ("Tr0ub4dor", "horse", "db-7f3a", "warehouse_x"):
        assert piece not in output and piece not in stored
