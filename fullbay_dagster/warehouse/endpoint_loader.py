"""Loading one day of any endpoint but invoices: the invoice path's guarantees,
made generic over :class:`~fullbay_dagster.fullbay.endpoints.Endpoint`.

``load_endpoint_raw_day`` lands the API's answer in ``fullbay_raw_records`` (content
hash, deletion marking, revival, quarantine, later answers never overwritten by
earlier ones) and ``build_endpoint_day`` brings the endpoint's typed and line
tables in line with it (field issues, schema observation). Each runs in one
transaction under the same per-(table, day) advisory lock as invoices, and reuses
the invoice loader's helpers rather than copying them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, and_, cast, delete, func, or_, select, update

from fullbay_dagster.fullbay.endpoints import Endpoint
from fullbay_dagster.fullbay.generic_records import check_endpoint_record, normalise_record
from fullbay_dagster.fullbay.observe import Observed, Observer
from fullbay_dagster.fullbay.records import Checked, RecordError
from fullbay_dagster.warehouse.bulk import JsonText, insert_new, upsert
from fullbay_dagster.warehouse.loader import (
    BATCH_SIZE,
    LoadCounts,
    _batches,
    _lock_partition,
    _quarantine_row,
    record_schema,
)
from fullbay_dagster.warehouse.schema import (
    endpoint_line_tables,
    endpoint_tables,
    field_issues,
    quarantine,
    raw_records,
)


def _issue_path(endpoint: Endpoint, path: str) -> str:
    """Field issues and observed paths carry the endpoint: ``customer_payments:amount``."""
    return f"{endpoint.name}:{path}"


def _quarantine(endpoint: Endpoint, record: Any, day: date, reason: str, now: datetime, run_id: str | None) -> Any:
    row = _quarantine_row(record, day, reason, now, run_id)
    key = record.get(endpoint.key_field) if isinstance(record, dict) else None
    usable = isinstance(key, (str, int)) and not isinstance(key, bool)
    row["fullbay_id"] = str(key).replace("\x00", "\\0")[:64] if usable else None
    row["endpoint"] = endpoint.name
    # The same bad record may come from two endpoints on one day: keep both.
    row["record_hash"] = hashlib.sha256(f"{endpoint.name}\n{row['raw_text']}".encode()).hexdigest()
    return row


def _mark(connection: Connection, endpoint: Endpoint, ids: list[str], values: dict[str, Any]) -> None:
    for chunk in _batches(ids, BATCH_SIZE):
        connection.execute(
            update(raw_records)
            .where(raw_records.c.endpoint == endpoint.name, raw_records.c.fullbay_id.in_(chunk))
            .values(**values)
        )


def load_endpoint_raw_day(
    engine: Engine,
    endpoint: Endpoint,
    day: date,
    records: Iterable[Any],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
) -> LoadCounts:
    """Land the complete answer of ``endpoint`` for ``day`` (see ``loader.load_raw_day``)."""
    now = now or datetime.now(UTC)
    fetched_at = fetched_at or now
    counts = LoadCounts()
    table = raw_records
    outcome: dict[str, str] = {}
    bad: dict[str, dict[str, Any]] = {}
    with engine.begin() as connection:
        _lock_partition(connection, f"{table.name}:{endpoint.name}", day)
        for batch in _batches(records, BATCH_SIZE):
            latest: dict[str, Checked] = {}
            for record in batch:
                try:
                    checked = check_endpoint_record(endpoint, record, day)
                except RecordError as exc:
                    row = _quarantine(endpoint, record, day, str(exc), now, run_id)
                    bad[row["record_hash"]] = row
                    continue
                if checked.key in outcome or checked.key in latest:
                    counts.duplicates += 1
                latest[checked.key] = checked
            existing = {
                row.fullbay_id: row
                for row in connection.execute(
                    select(table.c.fullbay_id, table.c.content_hash, table.c.deleted_at, table.c.fetched_at).where(
                        table.c.endpoint == endpoint.name, table.c.fullbay_id.in_(list(latest))
                    )
                )
            }
            new: list[Checked] = []
            changed: list[Checked] = []
            unchanged: list[str] = []
            for key, checked in latest.items():
                old = existing.get(key)
                if old is not None and old.fetched_at is not None and old.fetched_at > fetched_at:
                    outcome.setdefault(key, "stale")  # a later answer has landed already
                    continue
                if old is not None and old.content_hash == checked.digest and old.deleted_at is None:
                    if key not in outcome:
                        outcome[key] = "unchanged"
                        unchanged.append(key)
                    continue
                if key not in outcome:
                    outcome[key] = "inserted" if old is None else "updated"
                elif outcome[key] == "unchanged":
                    outcome[key] = "updated"
                (new if old is None else changed).append(checked)
            insert_new(connection, table, [_raw_row(endpoint, c, day, now, fetched_at, run_id) for c in new])
            upsert(
                connection,
                table,
                [_raw_row(endpoint, c, day, now, fetched_at, run_id) for c in changed],
                ["endpoint", "fullbay_id"],
                keep=["first_seen_at"],
            )
            _mark(
                connection, endpoint, unchanged, {"last_seen_at": now, "last_run_id": run_id, "fetched_at": fetched_at}
            )
        upsert(connection, quarantine, list(bad.values()), ["partition_key", "record_hash"], keep=["first_seen_at"])
        present = set(outcome) | {row["fullbay_id"] for row in bad.values() if row["fullbay_id"]}
        counts.deleted = _mark_vanished(connection, endpoint, day, present, now, fetched_at)
    tally = Counter(outcome.values())
    counts.processed = len(outcome) + len(bad)
    counts.inserted, counts.updated, counts.unchanged = tally["inserted"], tally["updated"], tally["unchanged"]
    counts.stale, counts.quarantined = tally["stale"], len(bad)
    return counts


def _raw_row(
    endpoint: Endpoint, checked: Checked, day: date, now: datetime, fetched_at: datetime, run_id: str | None
) -> dict[str, Any]:
    return {
        "endpoint": endpoint.name,
        "fullbay_id": checked.key,
        "record_date": day,
        "raw_data": JsonText(checked.text),
        "content_hash": checked.digest,
        "first_seen_at": now,
        "last_seen_at": now,
        "last_changed_at": now,
        "deleted_at": None,
        "last_run_id": run_id,
        "fetched_at": fetched_at,
    }


def _mark_vanished(
    connection: Connection, endpoint: Endpoint, day: date, seen: Collection[str], now: datetime, fetched_at: datetime
) -> int:
    table = raw_records
    present = connection.execute(
        select(table.c.fullbay_id).where(
            table.c.endpoint == endpoint.name,
            table.c.record_date == day,
            table.c.deleted_at.is_(None),
            or_(table.c.fetched_at.is_(None), table.c.fetched_at <= fetched_at),
        )
    ).scalars()
    vanished = [key for key in present if key not in seen]
    _mark(connection, endpoint, vanished, {"deleted_at": now, "fetched_at": fetched_at})
    return len(vanished)


def mapped_columns(endpoint: Endpoint) -> dict[str, str]:
    """Observed path -> the typed column it loads into, for ``fullbay_schema_fields``."""
    out = {_issue_path(endpoint, t.path): f"{endpoint.table}.{t.column}" for t in endpoint.columns}
    if endpoint.lines_path and endpoint.lines_table:
        for t in endpoint.line_columns:
            out[_issue_path(endpoint, f"{endpoint.lines_path}[].{t.path}")] = f"{endpoint.lines_table}.{t.column}"
    return out


def build_endpoint_day(
    engine: Engine, endpoint: Endpoint, day: date, *, now: datetime | None = None, run_id: str | None = None
) -> LoadCounts:
    """Bring the typed (and line) table of ``endpoint`` in line with its raw rows of ``day``:
    only records whose content hash changed are rebuilt; rows whose raw record
    vanished or moved are marked deleted; fields are observed into ``fullbay_schema_fields``."""
    now = now or datetime.now(UTC)
    counts = LoadCounts()
    typed = endpoint_tables[endpoint.name]
    lines = endpoint_line_tables.get(endpoint.name)
    raw = raw_records
    observer = Observer()
    live_raw = and_(raw.c.endpoint == endpoint.name, raw.c.record_date == day, raw.c.deleted_at.is_(None))
    with engine.begin() as connection:
        _lock_partition(connection, typed.name, day)
        current = {
            row.fullbay_id: row
            for row in connection.execute(
                select(typed.c.fullbay_id, typed.c.content_hash, typed.c.deleted_at).where(
                    typed.c.fullbay_id.in_(select(raw.c.fullbay_id).where(live_raw))
                )
            )
        }
        todo: dict[str, bool] = {}
        for key, digest in connection.execute(select(raw.c.fullbay_id, raw.c.content_hash).where(live_raw)):
            counts.processed += 1
            old = current.get(key)
            if old is not None and old.content_hash == digest and old.deleted_at is None:
                counts.unchanged += 1
            else:
                todo[key] = old is not None
        for chunk in _batches(list(todo), BATCH_SIZE):
            _build_chunk(connection, endpoint, day, chunk, todo, now, run_id, counts, observer)
        orphans = list(
            connection.execute(
                select(typed.c.fullbay_id).where(
                    typed.c.record_date == day,
                    typed.c.deleted_at.is_(None),
                    ~typed.c.fullbay_id.in_(select(raw.c.fullbay_id).where(live_raw)),
                )
            ).scalars()
        )
        for chunk in _batches(orphans, BATCH_SIZE):
            connection.execute(
                update(typed).where(typed.c.fullbay_id.in_(chunk)).values(deleted_at=now, updated_at=now)
            )
            connection.execute(delete(field_issues).where(*_issues_of(endpoint, chunk)))
        counts.deleted = len(orphans)
        record_schema(connection, _prefixed(endpoint, observer.observed()), now, run_id, mapped_columns(endpoint))
        counts.field_issues = connection.execute(
            select(func.count())
            .select_from(field_issues)
            .where(field_issues.c.invoice_date == day, field_issues.c.field_path.startswith(f"{endpoint.name}:"))
        ).scalar_one()
    if lines is not None:
        counts.lines = _count_lines(engine, lines, day)
    return counts


def _issues_of(endpoint: Endpoint, keys: list[str]) -> tuple[Any, ...]:
    return (field_issues.c.fullbay_id.in_(keys), field_issues.c.field_path.startswith(f"{endpoint.name}:"))


def _prefixed(endpoint: Endpoint, observed: Observed) -> Observed:
    out: Observed = Counter()
    for (path, kind), count in observed.items():
        out[(_issue_path(endpoint, path), kind)] += count
    return out


def _build_chunk(
    connection: Connection,
    endpoint: Endpoint,
    day: date,
    chunk: list[str],
    todo: dict[str, bool],
    now: datetime,
    run_id: str | None,
    counts: LoadCounts,
    observer: Observer,
) -> None:
    typed = endpoint_tables[endpoint.name]
    lines_table = endpoint_line_tables.get(endpoint.name)
    raw = raw_records
    texts = connection.execute(
        select(raw.c.fullbay_id, raw.c.content_hash, cast(raw.c.raw_data, Text)).where(
            raw.c.endpoint == endpoint.name, raw.c.fullbay_id.in_(chunk)
        )
    ).all()
    rows, line_rows = [], []
    first_seen = {
        (r.fullbay_id, r.field_path): r.first_seen_at
        for r in connection.execute(
            select(field_issues.c.fullbay_id, field_issues.c.field_path, field_issues.c.first_seen_at).where(
                *_issues_of(endpoint, chunk)
            )
        )
    }
    issues = []
    for key, digest, raw_text in texts:
        record = json.loads(raw_text)
        observer.offer(record)
        normalised = normalise_record(endpoint, record, key, day)
        rows.append(
            {**normalised.row, "content_hash": digest, "updated_at": now, "deleted_at": None, "last_run_id": run_id}
        )
        line_rows.extend(normalised.lines)
        for issue in normalised.issues:
            path = _issue_path(endpoint, issue.path)
            issues.append(
                {
                    "fullbay_id": key,
                    "field_path": path,
                    "invoice_date": day,
                    "expected_type": issue.expected,
                    "observed_value": issue.observed,
                    "first_seen_at": first_seen.get((key, path), now),
                    "last_seen_at": now,
                    "last_run_id": run_id,
                }
            )
    upsert(connection, typed, rows, ["fullbay_id"])
    if lines_table is not None:
        existed = [key for key in chunk if todo[key]]
        for part in _batches(existed, BATCH_SIZE):
            connection.execute(delete(lines_table).where(lines_table.c.fullbay_id.in_(part)))
        insert_new(connection, lines_table, line_rows)
    connection.execute(delete(field_issues).where(*_issues_of(endpoint, chunk)))
    insert_new(connection, field_issues, issues)
    counts.inserted += sum(1 for key in chunk if not todo[key])
    counts.updated += sum(1 for key in chunk if todo[key])


def _count_lines(engine: Engine, table: Any, day: date) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(table.c.record_date == day)).scalar_one())


def count_live_records(engine: Engine, endpoint: Endpoint, first: date, last: date) -> int:
    """Raw records of ``first..last`` not marked deleted (the API's count, for checks)."""
    with engine.connect() as connection:
        query = select(func.count()).where(
            raw_records.c.endpoint == endpoint.name,
            raw_records.c.record_date.between(first, last),
            raw_records.c.deleted_at.is_(None),
        )
        return int(connection.execute(query).scalar_one())
