"""Building one day of any endpoint's typed (and line) table from its raw rows, in
one transaction; and schema observation, which every build feeds.

Only records whose content hash differs from the built row are read and rebuilt;
their lines and field issues are replaced as a whole, so a line removed in Fullbay
disappears and an issue that no longer occurs is resolved (deleted). A field that
does not parse is NULL in its column and a row of ``fullbay_field_issues``; only a
record that cannot be placed is quarantined (its raw row stays: it is what the API
said). Rows whose raw record vanished or moved to another day are marked deleted.
Where the rows go is the endpoint's :class:`~.targets.Shaping`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, MetaData, Table, Text, and_, cast, delete, func, select, text, update
from sqlalchemy.dialects import postgresql

from fullbay_dagster.fullbay.endpoints import INVOICES, Endpoint
from fullbay_dagster.fullbay.jsonio import parse_json
from fullbay_dagster.fullbay.observe import Observed, Observer
from fullbay_dagster.fullbay.records import RecordError
from fullbay_dagster.warehouse import targets
from fullbay_dagster.warehouse.bulk import insert_new, upsert
from fullbay_dagster.warehouse.day_load import BATCH_SIZE, LoadCounts, batches, lock_partition
from fullbay_dagster.warehouse.schema import field_issues, fitted, quarantine, schema_fields
from fullbay_dagster.warehouse.targets import Shaping, shaping

_UTC = ZoneInfo("UTC")


def build_day(
    engine: Engine,
    endpoint: Endpoint,
    day: date,
    *,
    zone: ZoneInfo = _UTC,
    source: str = "fullbay_api",
    now: datetime | None = None,
    run_id: str | None = None,
) -> LoadCounts:
    """Bring the typed and line tables of ``endpoint`` in line with its raw rows of ``day``.

    ``zone`` reads Fullbay's local timestamps (invoices); ``source`` is written where
    the table records it (``fullbay_work_orders.ingestion_source``). The fields of
    every record read are counted into ``fullbay_schema_fields``.
    """
    now = now or datetime.now(UTC)
    shape = shaping(endpoint)
    raw, typed = shape.landing.table, shape.table
    counts = LoadCounts()
    observer = Observer()
    with engine.begin() as connection:
        lock_partition(connection, typed.name, day)
        if _stages_raw_data(connection, typed):
            stage = _stage(typed)
            connection.execute(
                text(
                    f"CREATE TEMP TABLE {stage.name} (LIKE {typed.name}) ON COMMIT DROP; "
                    f"ALTER TABLE {stage.name} ALTER COLUMN raw_data DROP NOT NULL"
                )
            )
        last_key = ""
        lines: list[dict[str, Any]] = []  # the previous batch's, written once the next batch is read
        while True:
            batch = connection.execute(
                select(raw.c.fullbay_id, raw.c.content_hash, raw.c.deleted_at)
                .where(*shape.landing.of_day(day), raw.c.fullbay_id > last_key)
                .order_by(raw.c.fullbay_id)
                .limit(BATCH_SIZE)
            ).all()
            if not batch:
                break
            last_key = batch[-1].fullbay_id
            todo, texts = _read_batch(connection, shape, day, batch, counts)
            # The server stores the previous batch's lines while this one is shaped.
            _write_lines(connection, shape, lines, background=True)
            built = _shape_batch(shape, day, todo, texts, zone, source, now, run_id, observer)
            lines = _write_batch(connection, shape, built, counts)
        _write_lines(connection, shape, lines, background=False)
        counts.deleted = _mark_orphans(connection, shape, day, now)
        observed = _prefixed(shape.issue_prefix, observer.observed())
        record_schema(connection, observed, now, run_id, shape.mapped_columns)
        counts.field_issues = connection.execute(
            select(func.count()).select_from(field_issues).where(field_issues.c.invoice_date == day, shape.issue_scope)
        ).scalar_one()
    return counts


def _mark_orphans(connection: Connection, shape: Shaping, day: date, now: datetime) -> int:
    """Rows of this day whose raw row moved to another day or vanished: marked deleted."""
    raw, typed = shape.landing.table, shape.table
    live_raw = select(raw.c.fullbay_id).where(*shape.landing.of_day(day), raw.c.deleted_at.is_(None))
    orphans = connection.execute(
        select(typed.c.fullbay_id).where(
            typed.c[shape.date_column] == day, typed.c.deleted_at.is_(None), ~typed.c.fullbay_id.in_(live_raw)
        )
    ).scalars()
    vanished = list(orphans)
    for chunk in batches(vanished):
        connection.execute(update(typed).where(typed.c.fullbay_id.in_(chunk)).values(deleted_at=now, updated_at=now))
        connection.execute(
            delete(field_issues).where(
                field_issues.c.fullbay_id.in_(chunk), field_issues.c.invoice_date == day, shape.issue_scope
            )
        )
    return len(vanished)


def _prefixed(prefix: str, observed: Observed) -> Observed:
    if not prefix:
        return observed
    out: Observed = Counter()
    for (path, kind), count in observed.items():
        out[(prefix + path, kind)] += count
    return out


def _read_batch(
    connection: Connection, shape: Shaping, day: date, batch: Sequence[Any], counts: LoadCounts
) -> tuple[dict[str, bool], Sequence[Any]]:
    """The records of ``batch`` to rebuild (fullbay_id -> has a typed row already), and
    their raw text. A row built on another day is rebuilt: its raw row moved here."""
    typed = shape.table
    current = {
        row.fullbay_id: row
        for row in connection.execute(
            select(
                typed.c.fullbay_id, typed.c.content_hash, typed.c.deleted_at, typed.c[shape.date_column].label("day")
            ).where(typed.c.fullbay_id.in_([r.fullbay_id for r in batch]))
        )
    }
    todo: dict[str, bool] = {}
    for raw_row in batch:
        if raw_row.deleted_at is not None:
            continue  # handled as an orphan after the batches
        counts.processed += 1
        old = current.get(raw_row.fullbay_id)
        if old is not None and old.content_hash == raw_row.content_hash and old.deleted_at is None and old.day == day:
            counts.unchanged += 1
        else:
            todo[raw_row.fullbay_id] = old is not None
    if not todo:
        return todo, []
    raw = shape.landing.table
    texts = connection.execute(
        select(raw.c.fullbay_id, raw.c.content_hash, cast(raw.c.raw_data, Text)).where(
            *shape.landing.scope, raw.c.fullbay_id.in_(list(todo))
        )
    ).all()
    return todo, texts


@dataclass
class _Built:
    """One batch shaped into rows, with no database work yet."""

    todo: dict[str, bool]  # fullbay_id -> has a typed row already (quarantined records removed)
    keys: list[str]  # every record read, quarantined or not: their field issues are replaced
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _shape_batch(
    shape: Shaping,
    day: date,
    todo: dict[str, bool],
    texts: Sequence[Any],
    zone: ZoneInfo,
    source: str,
    now: datetime,
    run_id: str | None,
    observer: Observer,
) -> _Built:
    built = _Built(todo, [key for key, _, _ in texts])
    for key, digest, raw_text in texts:
        # The stored JSON holds no NaN or lone surrogate (the landing refused them):
        # orjson reads it as the standard library would (see jsonio), several times faster.
        record = parse_json(raw_text)
        observer.offer(record)
        try:
            normalised = shape.normalise(record, key, day, zone)
        except RecordError as exc:
            built.bad.append(shape.landing.quarantine_row(record, day, str(exc), now, run_id))
            del todo[key]
            continue
        for issue in normalised.issues:
            path = shape.issue_prefix + issue.path
            built.issues.setdefault(
                (key, path),
                {
                    "fullbay_id": key,
                    "field_path": path,
                    "invoice_date": day,
                    "expected_type": issue.expected,
                    "observed_value": issue.observed,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "last_run_id": run_id,
                },
            )
        built.rows.append({**normalised.row, **shape.bookkeeping(digest, raw_text, now, run_id, source)})
        built.lines.extend(normalised.lines)
    return built


def _write_batch(connection: Connection, shape: Shaping, built: _Built, counts: LoadCounts) -> list[dict[str, Any]]:
    """Everything of the batch but its new lines, which it returns (see ``_write_lines``)."""
    todo = built.todo
    if not todo and not built.bad:
        return []
    _write_rows(connection, shape, built.rows, all_new=not any(todo.values()))
    if shape.lines is not None:
        line_table = shape.lines
        for chunk in batches([key for key, existed in todo.items() if existed]):
            connection.execute(delete(line_table).where(line_table.c.fullbay_id.in_(chunk)))
    _replace_issues(connection, shape, built.keys, list(built.issues.values()))
    upsert(connection, quarantine, built.bad, ["partition_key", "record_hash"], keep=["first_seen_at"])
    counts.inserted += sum(1 for existed in todo.values() if not existed)
    counts.updated += sum(1 for existed in todo.values() if existed)
    counts.quarantined += len(built.bad)
    counts.lines += len(built.lines)
    return built.lines


def _write_lines(connection: Connection, shape: Shaping, lines: list[dict[str, Any]], *, background: bool) -> None:
    """A batch's new lines, after its typed rows (their foreign key) and old lines are written."""
    if shape.lines is not None:
        insert_new(connection, shape.lines, lines, background=background)


def _replace_issues(connection: Connection, shape: Shaping, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """The field issues of the rebuilt records ``keys`` become ``rows``; an issue
    seen before keeps its first-seen time, one no longer present is resolved."""
    first_seen: dict[tuple[str, str], datetime] = {}
    for chunk in batches(keys):
        mine = (field_issues.c.fullbay_id.in_(chunk), shape.issue_scope)
        found = connection.execute(
            select(field_issues.c.fullbay_id, field_issues.c.field_path, field_issues.c.first_seen_at).where(*mine)
        ).all()
        if found:
            first_seen.update({(r.fullbay_id, r.field_path): r.first_seen_at for r in found})
            connection.execute(delete(field_issues).where(*mine))
    for row in rows:
        row["first_seen_at"] = first_seen.get((row["fullbay_id"], row["field_path"]), row["first_seen_at"])
    insert_new(connection, field_issues, rows)


# On PostgreSQL the new and changed rows of a typed table that carries raw_data
# (fullbay_work_orders) are COPYed without it into a stage and merged from there,
# taking raw_data from the raw table inside the server: the largest column never
# travels to Python and back.
def _stages_raw_data(connection: Connection, table: Table) -> bool:
    return connection.dialect.name == "postgresql" and "raw_data" in table.c


@cache
def _stage(table: Table) -> Table:
    return table.to_metadata(MetaData(), name=f"{table.name}_stage")


def _write_rows(connection: Connection, shape: Shaping, rows: list[dict[str, Any]], all_new: bool) -> None:
    if not rows:
        return
    typed = shape.table
    if not _stages_raw_data(connection, typed):
        upsert(connection, typed, rows, ["fullbay_id"])
        return
    stage, raw = _stage(typed), shape.landing.table
    insert_new(connection, stage, [{k: v for k, v in row.items() if k != "raw_data"} for row in rows])
    columns = [c.name for c in typed.columns if c.name != "raw_data"]
    merged = postgresql.insert(typed).from_select(
        [*columns, "raw_data"],
        select(*(stage.c[name] for name in columns), raw.c.raw_data).join(
            raw, and_(raw.c.fullbay_id == stage.c.fullbay_id, *shape.landing.scope)
        ),
    )
    if not all_new:  # a first load of a day skips the conflict handling
        merged = merged.on_conflict_do_update(
            index_elements=["fullbay_id"],
            set_={name: merged.excluded[name] for name in [*columns, "raw_data"] if name != "fullbay_id"},
        )
    connection.execute(merged)
    connection.execute(text(f"TRUNCATE {stage.name}"))


def record_schema(
    connection: Connection,
    observed: Observed,
    now: datetime,
    run_id: str | None,
    mapped_columns: Mapping[str, str] | None = None,
) -> None:
    """Add what a load saw to ``fullbay_schema_fields`` (one row per folded path);
    ``mapped_columns`` (path -> table.column) defaults to the invoices' columns."""
    if not observed:
        return
    mapped = targets.mapped_columns(INVOICES) if mapped_columns is None else mapped_columns
    # Loads of different days run side by side: take turns on this shared table.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('fullbay:schema_fields'))"))
    by_path: dict[str, dict[str, int]] = {}
    for (path, kind), count in observed.items():
        kinds = by_path.setdefault(fitted(path, schema_fields.c.field_path), {})
        kinds[kind] = kinds.get(kind, 0) + count
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
        rows.append(
            {
                "field_path": path,
                "json_types": dict(sorted(types.items())),
                "seen_count": sum(types.values()),
                "mapped_column": mapped.get(path),
                "first_seen_at": old.first_seen_at if old is not None else now,
                "last_seen_at": now,
                "last_run_id": run_id,
            }
        )
    for chunk in batches(rows):
        upsert(connection, schema_fields, chunk, ["field_path"])
