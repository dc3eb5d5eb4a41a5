"""End to end: a week of type chaos through the real CLI (``dagster asset
materialize``, a subprocess) from the simulator (another subprocess, with
``--type-chaos``) into PostgreSQL. Every invoice lands; nothing is quarantined;
what did not parse is counted in ingestion_metadata and listed in
fullbay_field_issues."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import requests
from sqlalchemy import text

from fullbay_dagster.warehouse.engine import make_engine
from fullbay_dagster_tests.conftest import TEST_KEY

FIRST, LAST = date(2025, 3, 10), date(2025, 3, 16)
PER_DAY = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_type_chaos_week_through_dagster_asset_materialize(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable, "-m", "fullbay_dagster.fullbay.simulator", "--port", str(port), "--key", TEST_KEY,
            "--invoices-per-day", str(PER_DAY), "--page-size", "10", "--expected-ip", "127.0.0.1",
            "--type-chaos", "0.08", "--seed", "11",
        ]
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/_sim/config", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp_path),
            "DATABASE_URL": pg_url,
            "FULLBAY_API_KEY": TEST_KEY,
            "FULLBAY_API_BASE_URL": f"http://127.0.0.1:{port}/services",
            "FULLBAY_PUBLIC_IP": "127.0.0.1",
            "FULLBAY_START_DATE": "2025-01-01",
        }
        dagster = Path(sys.executable).parent / "dagster"
        command = [str(dagster), "asset", "materialize", "-m", "fullbay_dagster", "--select", "*"]
        completed = subprocess.run(
            [*command, "--partition-range", f"{FIRST}...{LAST}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    finally:
        simulator.terminate()
        simulator.wait(10)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            orders = connection.execute(
                text("SELECT COUNT(*) FROM fullbay_work_orders WHERE deleted_at IS NULL")
            ).scalar_one()
            quarantined = connection.execute(text("SELECT COUNT(*) FROM fullbay_quarantine")).scalar_one()
            issues = connection.execute(text("SELECT COUNT(*) FROM fullbay_field_issues")).scalar_one()
            days = connection.execute(
                text("SELECT partition_key, status, field_issues FROM ingestion_metadata ORDER BY partition_key")
            ).all()
            schema_rows = connection.execute(text("SELECT COUNT(*) FROM fullbay_schema_fields")).scalar_one()
    finally:
        engine.dispose()
    week = [(FIRST + timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days + 1)]
    assert orders == PER_DAY * len(week)  # every invoice, whatever its fields' types
    assert quarantined == 0
    assert issues > 0 and sum(row.field_issues for row in days) == issues
    assert [(row.partition_key, row.status) for row in days] == [(day, "success") for day in week]
    assert schema_rows > 200
