"""Idempotent, transactional loading of one invoice day.

Each function loads one day in one transaction: the day either fully lands or the
tables are left as they were. Rows are upserted by key; a record whose content
hash is unchanged is not rewritten (only its last-seen time moves), so a rerun of
the same data leaves the business columns byte-for-byte the same. On PostgreSQL a
transaction-scoped advisory lock per (table, day) serialises concurrent loads of
the same partition.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, MetaData, Table, Text, and_, cast, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql

from fullbay_dagster.fullbay.fields import MAPPED
from fullbay_dagster.fullbay.observe import Observed, Observer
from fullbay_dagster.fullbay.records import Checked, RecordError, canonical_json, check_record, normalise_invoice
from fullbay_dagster.warehouse.bulk import JsonText, insert_new, upsert
from fullbay_dagster.warehouse.schema import (
    field_issues,
    quarantine,
    raw_work_orders,
    schema_fields,
    work_order_lines,
    work_orders,
)

BATCH_SIZE = 1000
# Field issues of the other endpoints name their path "<endpoint>:<path>" (see endpoint_loader).
_INVOICE_ISSUE = ~field_issues.c.field_path.contains(":")


@dataclass
class LoadCounts:
    processed: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0
    stale: int = 0
    quarantined: int = 0
    lines: int = 0
    field_issues: int = 0  # fields of the day's live invoices that did not parse (all of them, not only new)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return ", ".join(f"{value} {name}" for name, value in self.as_dict().items() if value or name == "processed")


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _lock_partition(connection: Connection, table: str, day: date) -> None:
    """Two runs of the same day take turns; different days run side by side."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"fullbay:{table}:{day.isoformat()}"}
        )


def _mark_seen(connection: Connection, table: Table, ids: list[str], values: dict[str, Any]) -> None:
    for chunk in _batches(ids, BATCH_SIZE):
        connection.execute(update(table).where(table.c.fullbay_id.in_(chunk)).values(**values))


def load_raw_day(
    engine: Engine,
    day: date,
    records: Iterable[Any],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
) -> LoadCounts:
    """Load the API's answer for ``day`` into ``fullbay_raw_work_orders``.

    ``records`` must be the complete answer for the day: invoices of that day that
    are in the table but not in ``records`` are marked deleted (not removed). A record
    that cannot be loaded goes to ``fullbay_quarantine`` with the reason; the rest of
    the day loads. ``fetched_at`` is when the answer was received: a row that came
    from a later answer is never overwritten by an earlier one, whatever the order in
    which two loads commit.
    """
    now = now or datetime.now(UTC)
    fetched_at = fetched_at or now
    counts = LoadCounts()
    table = raw_work_orders
    outcome: dict[str, str] = {}  # fullbay_id -> inserted | updated | unchanged | stale
    bad: dict[str, dict[str, Any]] = {}  # record hash -> quarantine row
    with engine.begin() as connection:
        _lock_partition(connection, table.name, day)
        for batch in _batches(records, BATCH_SIZE):
            latest: dict[str, Checked] = {}
            for record in batch:
                try:
                    checked = check_record(record, day)
                except RecordError as exc:
                    row = _quarantine_row(record, day, str(exc), now, run_id)
                    bad[row["record_hash"]] = row
                    continue
                if checked.key in outcome or checked.key in latest:
                    counts.duplicates += 1  # the same invoice on two pages: keep the later copy
                latest[checked.key] = checked
            new, changed, unchanged = _sort_batch(connection, latest, outcome, fetched_at)
            insert_new(connection, table, [_raw_row(c, day, now, fetched_at, run_id) for c in new])
            upsert(
                connection,
                table,
                [_raw_row(c, day, now, fetched_at, run_id) for c in changed],
                ["fullbay_id"],
                keep=["first_seen_at"],
            )
            _mark_seen(
                connection, table, unchanged, {"last_seen_at": now, "last_run_id": run_id, "fetched_at": fetched_at}
            )
        upsert(connection, quarantine, list(bad.values()), ["partition_key", "record_hash"], keep=["first_seen_at"])
        present = set(outcome) | {row["fullbay_id"] for row in bad.values() if row["fullbay_id"]}
        counts.deleted = _mark_vanished(connection, table, day, present, now, fetched_at)
    tally = Counter(outcome.values())
    counts.processed = len(outcome) + len(bad)
    counts.inserted, counts.updated, counts.unchanged = tally["inserted"], tally["updated"], tally["unchanged"]
    counts.stale, counts.quarantined = tally["stale"], len(bad)
    return counts


def _sort_batch(
    connection: Connection,
    latest: dict[str, Checked],
    outcome: dict[str, str],
    fetched_at: datetime,
) -> tuple[list[Checked], list[Checked], list[str]]:
    """Split a batch into new rows, changed rows and unchanged keys; records ``outcome``."""
    table = raw_work_orders
    existing = {
        row.fullbay_id: row
        for row in connection.execute(
            select(table.c.fullbay_id, table.c.content_hash, table.c.deleted_at, table.c.fetched_at).where(
                table.c.fullbay_id.in_(list(latest))
            )
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
    return new, changed, unchanged


def _raw_row(checked: Checked, day: date, now: datetime, fetched_at: datetime, run_id: str | None) -> dict[str, Any]:
    return {
        "fullbay_id": checked.key,
        "invoice_date": day,
        "raw_data": JsonText(checked.text),
        "content_hash": checked.digest,
        "first_seen_at": now,
        "last_seen_at": now,
        "last_changed_at": now,
        "deleted_at": None,
        "last_run_id": run_id,
        "fetched_at": fetched_at,
    }


def _quarantine_row(record: Any, day: date, reason: str, now: datetime, run_id: str | None) -> dict[str, Any]:
    # repr-like JSON that always succeeds: NaN stays NaN, NUL becomes \u0000, surrogates are escaped.
    raw_text = json.dumps(record, ensure_ascii=True, default=repr, sort_keys=True)
    key = record.get("primaryKey") if isinstance(record, dict) else None
    usable_key = isinstance(key, (str, int)) and not isinstance(key, bool)
    return {
        "partition_key": day.isoformat(),
        "record_hash": hashlib.sha256(raw_text.encode()).hexdigest(),
        # PostgreSQL text cannot hold NUL, and the key may be what made the record bad
        "fullbay_id": str(key).replace("\x00", "\\0")[:64] if usable_key else None,
        "reason": reason.replace("\x00", "\\0"),
        "raw_text": raw_text,
        "first_seen_at": now,
        "last_seen_at": now,
        "last_run_id": run_id,
    }


def _mark_vanished(
    connection: Connection, table: Table, day: date, seen: Collection[str], now: datetime, fetched_at: datetime
) -> int:
    """Rows of ``day`` absent from this answer; rows from a later answer are left alone."""
    present = connection.execute(
        select(table.c.fullbay_id).where(
            table.c.invoice_date == day,
            table.c.deleted_at.is_(None),
            or_(table.c.fetched_at.is_(None), table.c.fetched_at <= fetched_at),
        )
    ).scalars()
    vanished = [key for key in present if key not in seen]
    # fetched_at too: an earlier answer that still lists the invoice must not revive it.
    _mark_seen(connection, table, vanished, {"deleted_at": now, "fetched_at": fetched_at})
    return len(vanished)


def build_work_orders_day(
    engine: Engine,
    day: date,
    *,
    zone: ZoneInfo,
    source: str,
    now: datetime | None = None,
    run_id: str | None = None,
) -> LoadCounts:
    """Bring ``fullbay_work_orders`` and its lines in line with the raw rows of ``day``.

    Only invoices whose content hash differs from the normalised row are read and
    rebuilt; their lines and field issues are replaced as a whole, so a line removed
    in Fullbay disappears and an issue that no longer occurs is resolved (deleted).
    A field that does not parse is NULL in its column and a row of
    ``fullbay_field_issues``; only an invoice that cannot be placed is quarantined
    (its raw row stays: it is what the API said). The fields of every invoice read
    are counted into ``fullbay_schema_fields``.
    """
    now = now or datetime.now(UTC)
    counts = LoadCounts()
    raw = raw_work_orders
    observer = Observer()
    with engine.begin() as connection:
        _lock_partition(connection, work_orders.name, day)
        if connection.dialect.name == "postgresql":
            connection.execute(text(_CREATE_STAGE))
        last_key = ""
        while True:
            batch = connection.execute(
                select(raw.c.fullbay_id, raw.c.content_hash, raw.c.deleted_at)
                .where(and_(raw.c.invoice_date == day, raw.c.fullbay_id > last_key))
                .order_by(raw.c.fullbay_id)
                .limit(BATCH_SIZE)
            ).all()
            if not batch:
                break
            last_key = batch[-1].fullbay_id
            _build_batch(connection, day, batch, zone, source, now, run_id, counts, observer)
        # Work orders of this day whose raw row moved to another day or vanished.
        orphans = connection.execute(
            select(work_orders.c.fullbay_id).where(
                and_(
                    work_orders.c.invoice_date == day,
                    work_orders.c.deleted_at.is_(None),
                    ~work_orders.c.fullbay_id.in_(
                        select(raw.c.fullbay_id).where(and_(raw.c.invoice_date == day, raw.c.deleted_at.is_(None)))
                    ),
                )
            )
        ).scalars()
        vanished = list(orphans)
        _mark_seen(connection, work_orders, vanished, {"deleted_at": now, "updated_at": now})
        for chunk in _batches(vanished, BATCH_SIZE):
            connection.execute(
                delete(field_issues).where(
                    field_issues.c.fullbay_id.in_(chunk), field_issues.c.invoice_date == day, _INVOICE_ISSUE
                )
            )
        counts.deleted += len(vanished)
        record_schema(connection, observer.observed(), now, run_id)
        counts.field_issues = connection.execute(
            select(func.count()).select_from(field_issues).where(field_issues.c.invoice_date == day, _INVOICE_ISSUE)
        ).scalar_one()
    return counts


# On PostgreSQL new and changed work orders are COPYed without raw_data into this
# stage and merged from there, taking raw_data from the raw table inside the
# server: the largest column never travels to Python and back.
_STAGE = "fullbay_work_orders_stage"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE {_STAGE} (LIKE {work_orders.name}) ON COMMIT DROP; "
    f"ALTER TABLE {_STAGE} ALTER COLUMN raw_data DROP NOT NULL"
)
_stage = work_orders.to_metadata(MetaData(), name=_STAGE)


def _build_batch(
    connection: Connection,
    day: date,
    batch: Sequence[Any],
    zone: ZoneInfo,
    source: str,
    now: datetime,
    run_id: str | None,
    counts: LoadCounts,
    observer: Observer,
) -> None:
    current = {
        row.fullbay_id: row
        for row in connection.execute(
            select(work_orders.c.fullbay_id, work_orders.c.content_hash, work_orders.c.deleted_at).where(
                work_orders.c.fullbay_id.in_([r.fullbay_id for r in batch])
            )
        )
    }
    todo: dict[str, bool] = {}  # fullbay_id -> has a row already
    for raw_row in batch:
        if raw_row.deleted_at is not None:
            continue  # handled as an orphan after the batches
        counts.processed += 1
        old = current.get(raw_row.fullbay_id)
        if old is not None and old.content_hash == raw_row.content_hash and old.deleted_at is None:
            counts.unchanged += 1
        else:
            todo[raw_row.fullbay_id] = old is not None
    if not todo:
        return
    raw = raw_work_orders
    texts = connection.execute(
        select(raw.c.fullbay_id, raw.c.content_hash, cast(raw.c.raw_data, Text)).where(raw.c.fullbay_id.in_(list(todo)))
    ).all()
    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    issues: dict[tuple[str, str], dict[str, Any]] = {}
    for key, digest, raw_text in texts:
        record = json.loads(raw_text)
        observer.offer(record)
        try:
            normalised = normalise_invoice(record, zone)
        except RecordError as exc:
            bad.append(_quarantine_row(record, day, str(exc), now, run_id))
            del todo[key]
            continue
        for issue in normalised.issues:
            issues.setdefault(
                (key, issue.path),
                {
                    "fullbay_id": key,
                    "field_path": issue.path,
                    "invoice_date": day,
                    "expected_type": issue.expected,
                    "observed_value": issue.observed,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "last_run_id": run_id,
                },
            )
        rows.append(
            {
                **normalised.work_order,
                "updated_at": now,
                "content_hash": digest,
                "ingestion_timestamp": now,
                "ingestion_source": source,
                "deleted_at": None,
                "raw_data": JsonText(raw_text),
            }
        )
        lines.extend(normalised.lines)
    _write_work_orders(connection, rows, all_new=not any(todo.values()))
    for chunk in _batches([key for key, existed in todo.items() if existed], BATCH_SIZE):
        connection.execute(delete(work_order_lines).where(work_order_lines.c.fullbay_id.in_(chunk)))
    insert_new(connection, work_order_lines, lines)
    _replace_issues(connection, [key for key, _, _ in texts], list(issues.values()))
    upsert(connection, quarantine, bad, ["partition_key", "record_hash"], keep=["first_seen_at"])
    counts.inserted += sum(1 for existed in todo.values() if not existed)
    counts.updated += sum(1 for existed in todo.values() if existed)
    counts.quarantined += len(bad)
    counts.lines += len(lines)


def _replace_issues(connection: Connection, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """The field issues of the rebuilt invoices ``keys`` become ``rows``; an issue
    seen before keeps its first-seen time, one no longer present is resolved."""
    first_seen: dict[tuple[str, str], datetime] = {}
    for chunk in _batches(keys, BATCH_SIZE):
        found = connection.execute(
            select(field_issues.c.fullbay_id, field_issues.c.field_path, field_issues.c.first_seen_at).where(
                field_issues.c.fullbay_id.in_(chunk), _INVOICE_ISSUE
            )
        ).all()
        if found:
            first_seen.update({(r.fullbay_id, r.field_path): r.first_seen_at for r in found})
            connection.execute(delete(field_issues).where(field_issues.c.fullbay_id.in_(chunk), _INVOICE_ISSUE))
    for row in rows:
        row["first_seen_at"] = first_seen.get((row["fullbay_id"], row["field_path"]), row["first_seen_at"])
    insert_new(connection, field_issues, rows)


def record_schema(
    connection: Connection,
    observed: Observed,
    now: datetime,
    run_id: str | None,
    mapped_columns: Mapping[str, str] | None = None,
) -> None:
    """Add what a load saw to ``fullbay_schema_fields`` (one row per folded path);
    ``mapped_columns`` (path -> table.column) replaces the invoices' ``MAPPED``."""
    if not observed:
        return
    # Loads of different days run side by side: take turns on this shared table.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('fullbay:schema_fields'))"))
    by_path: dict[str, dict[str, int]] = {}
    for (path, kind), count in observed.items():
        by_path.setdefault(path, {})[kind] = by_path.get(path, {}).get(kind, 0) + count
    stored = {
        row.field_path: row
        for row in connection.execute(
            select(schema_fields.c.field_path, schema_fields.c.json_types, schema_fields.c.first_seen_at)
        )
    }
    rows = []
    for path in sorted(by_path):
        types = dict(by_path[path])
        old = stored.get(path)
        if old is not None:
            for kind, count in (old.json_types or {}).items():
                types[kind] = types.get(kind, 0) + int(count)
        if mapped_columns is not None:
            column = mapped_columns.get(path)
        else:
            mapped = MAPPED.get(path)
            column = mapped[0] if mapped else None
        rows.append(
            {
                "field_path": path,
                "json_types": dict(sorted(types.items())),
                "seen_count": sum(types.values()),
                "mapped_column": column,
                "first_seen_at": old.first_seen_at if old is not None else now,
                "last_seen_at": now,
                "last_run_id": run_id,
            }
        )
    for chunk in _batches(rows, BATCH_SIZE):
        upsert(connection, schema_fields, chunk, ["field_path"])


def _write_work_orders(connection: Connection, rows: list[dict[str, Any]], all_new: bool) -> None:
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        upsert(connection, work_orders, rows, ["fullbay_id"])
        return
    insert_new(connection, _stage, [{k: v for k, v in row.items() if k != "raw_data"} for row in rows])
    columns = [c.name for c in work_orders.columns if c.name != "raw_data"]
    merged = postgresql.insert(work_orders).from_select(
        [*columns, "raw_data"],
        select(*(_stage.c[name] for name in columns), raw_work_orders.c.raw_data).join(
            raw_work_orders, raw_work_orders.c.fullbay_id == _stage.c.fullbay_id
        ),
    )
    if not all_new:  # a first load of a day skips the conflict handling
        merged = merged.on_conflict_do_update(
            index_elements=["fullbay_id"],
            set_={name: merged.excluded[name] for name in [*columns, "raw_data"] if name != "fullbay_id"},
        )
    connection.execute(merged)
    connection.execute(text(f"TRUNCATE {_STAGE}"))


def table_checksum(engine: Engine, table: Table, exclude: Sequence[str] = ()) -> str:
    """A digest of every row (ordered by primary key), for proving two loads equal."""
    digest = hashlib.sha256()
    columns = [c for c in table.columns if c.name not in exclude]
    with engine.connect() as connection:
        result = connection.execute(select(*columns).order_by(*table.primary_key.columns))
        for row in result:
            digest.update(canonical_json({k: _plain(v) for k, v in row._mapping.items()}).encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    return None if value is None else str(value)


def count_live_rows(engine: Engine, table: Table, first: date, last: date) -> int:
    """Rows of ``first..last`` that are not marked deleted."""
    with engine.connect() as connection:
        query = select(func.count()).where(table.c.invoice_date.between(first, last), table.c.deleted_at.is_(None))
        return int(connection.execute(query).scalar_one())
