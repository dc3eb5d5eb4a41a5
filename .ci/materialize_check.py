"""CI's smoke run of the real CLI: `dagster asset materialize --select '*'` over two
fixed days, every endpoint, with the simulator as a separate process and a
throwaway PostgreSQL database; then every endpoint's rows and run-log rows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import requests
from sqlalchemy import create_engine, text

from fullbay_dagster.fullbay.endpoints import GENERIC_ENDPOINTS
from fullbay_dagster.warehouse.engine import normalise_url

FIRST, DAY = "2025-03-11", "2025-03-12"
PER_DAY = 25
KEY = "ci-key-5d1e7c34-9b0a-4f62-8e13-2a4b6c8d0e1f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    server = normalise_url(os.environ["FULLBAY_TEST_DATABASE_URL"])
    name = f"fullbay_ci_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fullbay_dagster.fullbay.simulator",
            "--port",
            str(port),
            "--key",
            KEY,
            "--invoices-per-day",
            str(PER_DAY),
            "--page-size",
            "10",
            "--expected-ip",
            "127.0.0.1",
        ],
    )
    try:
        base = f"http://127.0.0.1:{port}/services"
        for _ in range(50):
            try:
                requests.get(f"http://127.0.0.1:{port}/_sim/requests", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as home:
            database_url = server.set(database=name).render_as_string(hide_password=False)
            env = {
                **os.environ,
                "DAGSTER_HOME": home,
                "DATABASE_URL": database_url.replace("postgresql+psycopg2://", "postgresql://"),
                "FULLBAY_API_KEY": KEY,
                "FULLBAY_API_BASE_URL": base,
                "FULLBAY_PUBLIC_IP": "127.0.0.1",
                "FULLBAY_START_DATE": "2025-01-01",
            }
            command = [
                *("dagster", "asset", "materialize", "-m", "fullbay_dagster", "--select", "*"),
                *("--partition-range", f"{FIRST}...{DAY}"),
            ]
            print("$", " ".join(command), flush=True)
            subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), command[0]), *command[1:]], env=env, check=True
            )
        engine = create_engine(server.set(database=name))
        with engine.connect() as connection:
            orders = connection.execute(
                text("SELECT COUNT(*) FROM fullbay_work_orders WHERE invoice_date = :d AND deleted_at IS NULL"),
                {"d": DAY},
            ).scalar_one()
            lines = connection.execute(text("SELECT COUNT(*) FROM fullbay_work_order_lines")).scalar_one()
            logged = connection.execute(
                text("SELECT endpoint, partition_key, status FROM ingestion_metadata ORDER BY 1, 2")
            ).all()
            typed = {
                e.name: connection.execute(
                    text(f"SELECT COUNT(*) FROM {e.table} WHERE deleted_at IS NULL")
                ).scalar_one()
                for e in GENERIC_ENDPOINTS
            }
            aging = connection.execute(text("SELECT COUNT(*) FROM fullbay_receivables")).scalar_one()
        engine.dispose()
        print(f"{DAY}: {orders} work orders, {lines} lines; other endpoints' rows {typed}; receivables rows {aging}")
        names = ["invoices", *(e.name for e in GENERIC_ENDPOINTS)]
        expected = sorted((name, day, "success") for name in names for day in (FIRST, DAY))
        problems = []
        if orders != PER_DAY or lines == 0:
            problems.append(f"expected {PER_DAY} work orders on {DAY} with lines")
        if sorted(tuple(row) for row in logged) != expected:
            problems.append(f"expected a success run-log row per endpoint and day, found {logged}")
        problems += [f"no rows in {name}'s table" for name, rows in typed.items() if not rows]
        if not aging:
            problems.append("no receivables rows")
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        return 0
    finally:
        simulator.terminate()
        simulator.wait(10)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
