"""The run log: every write to ``ingestion_metadata`` goes through :class:`RunLog`.

One row per (run, endpoint, partition day): invoices' rows keep the identity they
always had (``<run id>:<day>``, ``endpoint`` 'invoices'); the other endpoints'
rows are ``<run id>:<endpoint>:<day>``. Each write is its own short transaction so a
failed load still leaves its row, with the error, behind. A row only moves
forward: ``running`` -> ``success`` or ``failed``; a step retry never turns a
finished row back to ``running``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select, update

from fullbay_dagster.warehouse.bulk import upsert
from fullbay_dagster.warehouse.day_load import LoadCounts
from fullbay_dagster.warehouse.schema import ingestion_metadata

RUNNING, SUCCESS, FAILED = "running", "success", "failed"
ABANDONED = "run ended without finishing"
# A run this instance does not know (another DAGSTER_HOME, the standalone Lambda's
# ephemeral instance) may be alive: its rows are closed only once no run could still
# be going (Lambda stops at 15 minutes, run monitoring fails an ECS run at 2 hours).
# Well under a day: the standalone Lambda runs daily, and its next run must close them.
UNKNOWN_RUN_ABANDONED_AFTER = timedelta(hours=3)
MAX_ERROR_CHARS = 4000


INVOICES = "invoices"


def execution_id(run_id: str, day: date, endpoint: str = INVOICES) -> str:
    if endpoint == INVOICES:
        return f"{run_id}:{day.isoformat()}"
    return f"{run_id}:{endpoint}:{day.isoformat()}"


@dataclass(frozen=True)
class RunLog:
    """The ``ingestion_metadata`` rows of one Dagster run for one endpoint."""

    engine: Engine
    run_id: str
    endpoint: str = INVOICES

    def start(self, days: Iterable[date], api_endpoint: str) -> None:
        """Open a ``running`` row per day; rows a previous attempt of this run opened are left as they are."""
        now = datetime.now(UTC)
        wanted = {execution_id(self.run_id, day, self.endpoint): day for day in days}
        with self.engine.begin() as connection:
            present = set(
                connection.execute(
                    select(ingestion_metadata.c.execution_id).where(ingestion_metadata.c.execution_id.in_(wanted))
                ).scalars()
            )
            rows = [
                {
                    "execution_id": key,
                    "partition_key": day.isoformat(),
                    "dagster_run_id": self.run_id,
                    "start_time": now,
                    "end_time": None,
                    "status": RUNNING,
                    "error_message": None,
                    "api_endpoint": api_endpoint,
                    "endpoint": self.endpoint,
                }
                for key, day in wanted.items()
                if key not in present
            ]
            upsert(connection, ingestion_metadata, rows, ["execution_id"], keep=["status", "start_time"])

    def record(self, day: date, **values: Any) -> None:
        """Counts of a day while it is still running (a finished row keeps its figures)."""
        self._update([day], values, only_running=True)

    def add_quarantined(self, day: date, count: int) -> None:
        """The raw step counted what it could not store; the normalise step adds what did not normalise."""
        self.record(day, records_quarantined=ingestion_metadata.c.records_quarantined + count)

    def record_raw(self, day: date, counts: LoadCounts) -> None:
        """What the raw step landed for the day: the API's records (each key once)."""
        self.record(
            day,
            records_processed=counts.processed,
            api_record_count=counts.processed,
            records_quarantined=counts.quarantined,
            records_duplicated=counts.duplicates,
        )

    def record_build(self, day: date, counts: LoadCounts) -> None:
        """What the normalise step did to the day (it adds to what the raw step quarantined)."""
        self.record(
            day,
            records_inserted=counts.inserted,
            records_updated=counts.updated,
            records_unchanged=counts.unchanged,
            records_deleted=counts.deleted,
            field_issues=counts.field_issues,
        )
        self.add_quarantined(day, counts.quarantined)

    def note(self, days: Iterable[date], message: str) -> None:
        """Why an attempt failed while Dagster retries the step: the row stays ``running``."""
        self._update(days, {"error_message": message[:MAX_ERROR_CHARS]}, only_running=True)

    def finish(self, days: Iterable[date]) -> None:
        self._update(days, {"status": SUCCESS, "end_time": datetime.now(UTC), "error_message": None}, True)

    def fail(self, days: Iterable[date], error: str) -> None:
        """Mark every still-running day of the run failed; finished days keep their status."""
        self._update(
            days, {"status": FAILED, "end_time": datetime.now(UTC), "error_message": error[:MAX_ERROR_CHARS]}, True
        )

    def fail_run(self, days: list[date], error: str, api_endpoints: Mapping[str, str]) -> None:
        """For a run that failed outside the assets' own handling (killed, timed out, failed
        before its first step): make sure each day of each endpoint the run loads
        (name -> the URL it calls) has a row, and fail every row of the run still running."""
        for endpoint, api_endpoint in api_endpoints.items():
            RunLog(self.engine, self.run_id, endpoint).start(days, api_endpoint)
        with self.engine.begin() as connection:
            connection.execute(
                update(ingestion_metadata)
                .where(ingestion_metadata.c.dagster_run_id == self.run_id, ingestion_metadata.c.status == RUNNING)
                .values(status=FAILED, end_time=datetime.now(UTC), error_message=error[:MAX_ERROR_CHARS])
            )

    def close_abandoned(self, days: Iterable[date], is_alive: Callable[[str], bool | None]) -> list[str]:
        """Fail the ``running`` rows other runs left for these days when those runs are gone
        (every endpoint's rows: a dead run finishes none of them). ``is_alive`` says None
        for a run it does not know: gone only once its rows are older than
        ``UNKNOWN_RUN_ABANDONED_AFTER``."""
        keys = [day.isoformat() for day in days]
        with self.engine.connect() as connection:
            others = dict(
                connection.execute(
                    select(ingestion_metadata.c.dagster_run_id, func.max(ingestion_metadata.c.start_time))
                    .where(
                        ingestion_metadata.c.partition_key.in_(keys),
                        ingestion_metadata.c.status == RUNNING,
                        ingestion_metadata.c.dagster_run_id != self.run_id,
                    )
                    .group_by(ingestion_metadata.c.dagster_run_id)
                ).all()
            )
        long_ago = datetime.now(UTC) - UNKNOWN_RUN_ABANDONED_AFTER
        dead = sorted(
            run_id for run_id, started in others.items() if run_id and _gone(is_alive(run_id), started, long_ago)
        )
        if dead:
            with self.engine.begin() as connection:
                connection.execute(
                    update(ingestion_metadata)
                    .where(
                        ingestion_metadata.c.dagster_run_id.in_(dead),
                        ingestion_metadata.c.status == RUNNING,
                    )
                    .values(status=FAILED, end_time=datetime.now(UTC), error_message=ABANDONED)
                )
        return dead

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(
                select(ingestion_metadata)
                .where(
                    ingestion_metadata.c.dagster_run_id == self.run_id,
                    ingestion_metadata.c.endpoint == self.endpoint,
                )
                .order_by(ingestion_metadata.c.partition_key)
            )
            return [dict(row._mapping) for row in result]

    def _update(self, days: Iterable[date], values: dict[str, Any], only_running: bool) -> None:
        conditions: list[ColumnElement[bool]] = [
            ingestion_metadata.c.execution_id.in_([execution_id(self.run_id, day, self.endpoint) for day in days])
        ]
        if only_running:
            conditions.append(ingestion_metadata.c.status == RUNNING)
        with self.engine.begin() as connection:
            connection.execute(update(ingestion_metadata).where(*conditions).values(**values))


def _gone(alive: bool | None, started: datetime, long_ago: datetime) -> bool:
    if alive is None:  # not this instance's run
        return started < long_ago  # start_time is a Timestamp: timezone-aware on every backend
    return not alive
