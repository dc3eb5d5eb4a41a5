"""What the tests that drive the real `dagster` CLI share: a local instance in a
temporary DAGSTER_HOME, the environment a user sets, and waiting on the outcome."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from sqlalchemy import Engine, func, select

from fullbay_dagster.defs.resources import FULLBAY_POOL
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster_tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


def local_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding the project's local instance file, as `make dev` makes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    return home


def cli_env(home: Path, pg_url: str, simulator: Simulator, **settings: str) -> dict[str, str]:
    """The environment of a user's shell: credentials, the simulator, and ``settings``."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DATABASE_URL": pg_url,
        "FULLBAY_API_KEY": TEST_KEY,
        "FULLBAY_API_BASE_URL": simulator.url,
        "FULLBAY_PUBLIC_IP": "127.0.0.1",
        "FULLBAY_START_DATE": "2025-01-01",
        **settings,
    }


def materialize_range(first: date, last: date, select_: str = "*") -> list[str]:
    return [
        *(sys.executable, "-m", "dagster", "asset", "materialize", "-m", "fullbay_dagster"),
        *("--select", select_, "--partition-range", f"{first}...{last}"),
    ]


@contextmanager
def local_instance(home: Path) -> Iterator[DagsterInstance]:
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved


def count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_then_kill(
    command: list[str], env: dict[str, str], simulator: Simulator, loaded: Callable[[], bool], what: str
) -> None:
    """Start ``command``; once ``loaded()`` holds, slow Fullbay down (so the run is
    mid-fetch) and SIGKILL the run's process, as the OOM killer or ``kill -9`` would."""
    cli = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(loaded, 240, what)
        simulator.configure(latency=3.0)
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(10)
    finally:
        if cli.poll() is None:
            cli.kill()


def only_run_and_pool_holders(home: Path) -> tuple[DagsterRunStatus, str, set[str]]:
    """The status and failure message of the only run of ``home`` (the killed one),
    and the runs holding a fullbay_api slot."""
    with local_instance(home) as instance:
        [run] = instance.get_runs()
        [failure] = [
            r.event_log_entry.dagster_event.message or ""  # type: ignore[union-attr]
            for r in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records
        ] or [""]
        info = instance.event_log_storage.get_concurrency_info(FULLBAY_POOL)
        return run.status, failure, {slot.run_id for slot in info.claimed_slots}
