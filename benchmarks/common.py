"""Shared helpers: throwaway databases, the simulator in its own process, timing."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import make_engine, normalise_url

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("FULLBAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_KEY = "bench-key-3c1f9a7e"  # the simulator's API key: not a secret
SEED = 7

# Variables a benchmark child must not inherit from the caller's shell.
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "DB_HOST",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_PORT",
    "DB_SSLMODE",
    "DB_IAM_AUTH",
    "SCHEDULE_EXPRESSION",
    "ENVIRONMENT",
    "SECRETS_MANAGER_SECRET_NAME",
    "FULLBAY_TIMEZONE",
    "FULLBAY_ALERT_TOPIC_ARN",
)


@dataclass
class Figure:
    """One printed line: a measured value, optionally checked against a target."""

    section: str
    name: str
    value: float | str
    unit: str = ""
    target: str = ""
    passed: bool | None = None  # None: informational, no target
    note: str = ""


@dataclass
class SectionResult:
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def admin_engine() -> Engine:
    return create_engine(normalise_url(SERVER_URL), isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(purpose: str, *, migrate_schema: bool = True) -> Iterator[str]:
    """A new empty database (migrated to the current schema), dropped afterwards; yields its URL."""
    name = f"fullbay_bench_{purpose}_{uuid.uuid4().hex[:8]}"
    admin = admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate_schema:
            engine = make_engine(url)
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(
    *, invoices_per_day: int, page_size: int, as_of: str, latency: float = 0.0, cache_size: int | None = None
) -> Iterator[str]:
    """``python -m fullbay_dagster.fullbay.simulator`` in its own process; yields the base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "fullbay_dagster.fullbay.simulator",
        "--port",
        str(port),
        "--key",
        BENCH_KEY,
        "--expected-ip",
        "127.0.0.1",
        "--seed",
        str(SEED),
        "--invoices-per-day",
        str(invoices_per_day),
        "--page-size",
        str(page_size),
        "--as-of",
        as_of,
        "--latency",
        str(latency),
    ]
    if cache_size is not None:
        command += ["--cache-size", str(cache_size)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening" not in line:
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(f"the simulator did not start: {line!r} {err[-2000:]}")
        yield f"http://127.0.0.1:{port}/services"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def job_env(database_url: str, simulator_url: str, start_date: str) -> dict[str, str]:
    """The environment of a child process that runs the real job against the simulator."""
    return child_env(
        {
            "DATABASE_URL": database_url,
            "FULLBAY_API_KEY": BENCH_KEY,
            "FULLBAY_API_BASE_URL": simulator_url,
            "FULLBAY_PUBLIC_IP": "127.0.0.1",
            "FULLBAY_START_DATE": start_date,
            # Invoices only: every benchmark measures the invoice pipeline (and dlt's
            # side fetches invoices only). The other six endpoints are their own work.
            "FULLBAY_ENDPOINTS": "invoices",
        }
    )


def run_child(module: str, args: Sequence[str], env: dict[str, str], timeout: float) -> tuple[str, float]:
    """Run ``python -m module args`` in a fresh process; returns (last stdout line, wall seconds)."""
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-4000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{module} printed nothing; stderr:\n{completed.stderr[-4000:]}")
    return lines[-1], wall


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine_info() -> dict[str, str]:
    with admin_engine().connect() as connection:
        server = str(connection.execute(text("SHOW server_version")).scalar_one())
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": server,
        "load average at start (1/5/15 min)": load_average(),
        "postgresql_url": describe_server(),
        "code": code_version(),
    }


def code_version() -> str:
    """The commit measured, and whether package files differed from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fullbay_dagster"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}" + (f" + uncommitted changes in {len(dirty)} package file(s)" if dirty else "")


def load_average() -> str:
    """Other work on the machine (e.g. test suites) skews timings: recorded with the figures."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def describe_server() -> str:
    url = make_url(SERVER_URL)
    return f"{url.host}:{url.port or 5432}"
