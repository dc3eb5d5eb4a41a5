"""Landing one day of any endpoint's answer in its raw table, in one transaction.

The day either fully lands or the table is left as it was. Rows are upserted by
key; a record whose content hash is unchanged is not rewritten (only its last-seen
time moves), so a rerun of the same data leaves the business columns byte-for-byte
the same. Where the rows go is the endpoint's :class:`~.targets.Landing`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, or_, select, update

from fullbay_dagster.fullbay.endpoints import Endpoint
from fullbay_dagster.fullbay.records import Checked, RecordError
from fullbay_dagster.warehouse.bulk import insert_new, upsert
from fullbay_dagster.warehouse.day_load import LoadCounts, batches, lock_partition
from fullbay_dagster.warehouse.schema import quarantine
from fullbay_dagster.warehouse.targets import Landing, landing


def land_raw_day(
    engine: Engine,
    endpoint: Endpoint,
    day: date,
    records: Iterable[Any],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
) -> LoadCounts:
    """Land the API's complete answer of ``endpoint`` for ``day``.

    ``records`` are the API's records, or :class:`Checked` ones (as
    ``SpoolResult.checked`` gives them: checked with ``endpoint``'s check for ``day``).
    Records of that day that are in the table but not in ``records`` are marked
    deleted (not removed); one that comes back is revived. A record that cannot be
    placed goes to ``fullbay_quarantine`` with the reason; the rest of the day
    loads. ``fetched_at`` is when the answer was received: a row that came from a
    later answer is never overwritten by an earlier one, whatever the order in
    which two loads commit.
    """
    now = now or datetime.now(UTC)
    fetched_at = fetched_at or now
    target = landing(endpoint)
    counts = LoadCounts()
    outcome: dict[str, str] = {}  # fullbay_id -> inserted | updated | unchanged | stale
    bad: dict[str, dict[str, Any]] = {}  # record hash -> quarantine row
    with engine.begin() as connection:
        lock_partition(connection, target.lock_name, day)
        for batch in batches(records):
            latest: dict[str, Checked] = {}
            for record in batch:
                if type(record) is Checked:  # checked by the spool, with this endpoint's check for this day
                    checked = record
                else:
                    try:
                        checked = target.check(record, day)
                    except RecordError as exc:
                        row = target.quarantine_row(record, day, str(exc), now, run_id)
                        bad[row["record_hash"]] = row
                        continue
                if checked.key in outcome or checked.key in latest:
                    counts.duplicates += 1  # the same record on two pages: keep the later copy
                latest[checked.key] = checked
            new, changed, unchanged = _sort_batch(connection, target, day, latest, outcome, fetched_at)
            # In the background: the next batch is read and checked while the server stores this one.
            rows = [target.row(c, day, now, fetched_at, run_id) for c in new]
            insert_new(connection, target.table, rows, background=True)
            upsert(
                connection,
                target.table,
                [target.row(c, day, now, fetched_at, run_id) for c in changed],
                target.key_columns,
                keep=["first_seen_at"],
            )
            _mark(connection, target, unchanged, {"last_seen_at": now, "last_run_id": run_id, "fetched_at": fetched_at})
        upsert(connection, quarantine, list(bad.values()), ["partition_key", "record_hash"], keep=["first_seen_at"])
        tally = Counter(outcome.values())
        if not tally["stale"]:  # the day's latest answer: what it could not place is the day's quarantine
            _resolve_quarantine(connection, target, day, set(bad))
        present = set(outcome) | {row["fullbay_id"] for row in bad.values() if row["fullbay_id"]}
        counts.deleted = _mark_vanished(connection, target, day, present, now, fetched_at)
    counts.processed = len(outcome) + len(bad)
    counts.inserted, counts.updated, counts.unchanged = tally["inserted"], tally["updated"], tally["unchanged"]
    counts.stale, counts.quarantined = tally["stale"], len(bad)
    return counts


def _resolve_quarantine(connection: Connection, target: Landing, day: date, still_bad: Collection[str]) -> None:
    """Quarantine rows of the day that its latest answer no longer holds: the record came
    back placeable (and landed) or left the answer. The build quarantines only what
    this same check refuses, so no row here is the build's alone."""
    stale = delete(quarantine).where(
        quarantine.c.partition_key == day.isoformat(), quarantine.c.endpoint == target.endpoint.name
    )
    if still_bad:
        stale = stale.where(quarantine.c.record_hash.not_in(list(still_bad)))
    connection.execute(stale)


def _mark(connection: Connection, target: Landing, ids: list[str], values: dict[str, Any]) -> None:
    table = target.table
    for chunk in batches(ids):
        connection.execute(update(table).where(*target.scope, table.c.fullbay_id.in_(chunk)).values(**values))


def _sort_batch(
    connection: Connection,
    target: Landing,
    day: date,
    latest: dict[str, Checked],
    outcome: dict[str, str],
    fetched_at: datetime,
) -> tuple[list[Checked], list[Checked], list[str]]:
    """Split a batch into new rows, changed rows and unchanged keys; records ``outcome``.
    A row of another day is changed even when its content is not: an endpoint without
    a date field dates its records by the day that lists them."""
    table = target.table
    existing = {
        row.fullbay_id: row
        for row in connection.execute(
            select(
                table.c.fullbay_id,
                table.c.content_hash,
                table.c.deleted_at,
                table.c.fetched_at,
                table.c[target.date_column].label("day"),
            ).where(*target.scope, table.c.fullbay_id.in_(list(latest)))
        )
    }
    new: list[Checked] = []
    changed: list[Checked] = []
    unchanged: list[str] = []
    for key, checked in latest.items():
        old = existing.get(key)  # for a repeated key: what this load wrote earlier
        if old is not None and old.fetched_at is not None and old.fetched_at > fetched_at:
            outcome.setdefault(key, "stale")  # a later answer has landed already: keep it
            continue
        if old is not None and old.content_hash == checked.digest and old.deleted_at is None and old.day == day:
            if key not in outcome:
                outcome[key] = "unchanged"
                unchanged.append(key)
            continue
        if key not in outcome:
            outcome[key] = "inserted" if old is None else "updated"
        elif outcome[key] == "unchanged":
            outcome[key] = "updated"
        (new if old is None else changed).append(checked)
    return new, changed, unchanged


def _mark_vanished(
    connection: Connection, target: Landing, day: date, seen: Collection[str], now: datetime, fetched_at: datetime
) -> int:
    """Rows of ``day`` absent from this answer; rows from a later answer are left alone."""
    table = target.table
    present = connection.execute(
        select(table.c.fullbay_id).where(
            *target.of_day(day),
            table.c.deleted_at.is_(None),
            or_(table.c.fetched_at.is_(None), table.c.fetched_at <= fetched_at),
        )
    ).scalars()
    vanished = [key for key in present if key not in seen]
    # fetched_at too: an earlier answer that still lists the record must not revive it.
    _mark(connection, target, vanished, {"deleted_at": now, "fetched_at": fetched_at})
    return len(vanished)
