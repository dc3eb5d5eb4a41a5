"""Bookkeeping rows in ``ingestion_metadata``: one per (run, partition day).

Written in their own short transactions so a failed load still leaves its row,
with the error, behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from fullbay_dagster.warehouse.bulk import upsert
from fullbay_dagster.warehouse.schema import ingestion_metadata

RUNNING, SUCCESS, FAILED = "running", "success", "failed"


def execution_id(run_id: str, day: date) -> str:
    return f"{run_id}:{day.isoformat()}"


def start(engine: Engine, run_id: str, days: Iterable[date], api_endpoint: str) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "execution_id": execution_id(run_id, day),
            "partition_key": day.isoformat(),
            "dagster_run_id": run_id,
            "start_time": now,
            "end_time": None,
            "status": RUNNING,
            "error_message": None,
            "api_endpoint": api_endpoint,
        }
        for day in days
    ]
    with engine.begin() as connection:
        upsert(connection, ingestion_metadata, rows, ["execution_id"])


def record(engine: Engine, run_id: str, day: date, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(ingestion_metadata)
            .where(ingestion_metadata.c.execution_id == execution_id(run_id, day))
            .values(**values)
        )


def finish(engine: Engine, run_id: str, day: date) -> None:
    record(engine, run_id, day, status=SUCCESS, end_time=datetime.now(UTC))


def record_run_failure(engine: Engine, run_id: str, days: list[date], error: str, api_endpoint: str) -> None:
    """For a run that failed outside the assets' own error handling (killed, timed
    out, failed before its first step): make sure each of its days has a row, and
    mark the ones still 'running' failed."""
    with engine.begin() as connection:
        present = set(
            connection.execute(
                select(ingestion_metadata.c.execution_id).where(ingestion_metadata.c.dagster_run_id == run_id)
            ).scalars()
        )
    missing = [day for day in days if execution_id(run_id, day) not in present]
    if missing:
        start(engine, run_id, missing, api_endpoint)
    fail(engine, run_id, days, error)


def fail(engine: Engine, run_id: str, days: Iterable[date], error: str) -> None:
    """Mark every still-running day of the run failed; finished days keep their status."""
    with engine.begin() as connection:
        connection.execute(
            update(ingestion_metadata)
            .where(
                ingestion_metadata.c.execution_id.in_([execution_id(run_id, day) for day in days]),
                ingestion_metadata.c.status == RUNNING,
            )
            .values(status=FAILED, end_time=datetime.now(UTC), error_message=error[:4000])
        )


def rows_for_run(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        result = connection.execute(
            select(ingestion_metadata)
            .where(ingestion_metadata.c.dagster_run_id == run_id)
            .order_by(ingestion_metadata.c.partition_key)
        )
        return [dict(row._mapping) for row in result]
