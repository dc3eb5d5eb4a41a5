"""The loader against a real database: idempotent, transactional, day-scoped loads.

Expectations are computed from the input JSON (counts of parts/corrections/charges,
content hashes, Decimal balances), never copied from the loader's own output.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from fullbay_dagster.fullbay.records import content_hash
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse.loader import (
    BATCH_SIZE,
    LoadCounts,
    build_work_orders_day,
    count_live_rows,
    load_raw_day,
    table_checksum,
)
from fullbay_dagster.warehouse.schema import (
    field_issues,
    quarantine,
    raw_work_orders,
    work_order_lines,
    work_orders,
)

ZONE = ZoneInfo("America/Chicago")
SEED = 5
DAY = date(2025, 3, 12)
PER_DAY = 25
T1 = datetime(2025, 3, 13, 6, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
T3 = datetime(2025, 3, 15, 6, 0, tzinfo=UTC)
TABLES = (raw_work_orders, work_orders, work_order_lines)


# --------------------------------------------------------------------------- helpers


def load(
    engine: Engine, day: date, records: Any, now: datetime, run_id: str = "run-1"
) -> tuple[LoadCounts, LoadCounts]:
    raw = load_raw_day(engine, day, records, run_id=run_id, now=now)
    built = build_work_orders_day(engine, day, zone=ZONE, source="getInvoices.php", now=now)
    return raw, built


def lines_in(invoice: dict[str, Any]) -> int:
    """Line rows an invoice should give: a labor line per correction, a part line per part, a misc per charge."""
    order = invoice.get("ServiceOrder") or {}
    count = len(order.get("MiscCharges") or [])
    for complaint in order.get("Complaints") or []:
        for correction in complaint.get("Corrections") or []:
            count += 1 + len(correction.get("Parts") or [])
    return count


def row_count(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def checksums(engine: Engine) -> dict[str, str]:
    return {table.name: table_checksum(engine, table) for table in TABLES}


def column_by_id(engine: Engine, table: Table, column: str) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(select(table.c.fullbay_id, table.c[column])).all())


def minimal(key: int, day: date = DAY) -> dict[str, Any]:
    """Enough of an invoice for the raw layer (which stores, but does not normalise)."""
    return {"primaryKey": str(key), "invoiceDate": day.isoformat(), "total": 10.5, "balance": 10.5}


# --------------------------------------------------------------------------- first load and rerun


def test_first_load_inserts_every_invoice_and_line(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, PER_DAY, DAY)
    raw, built = load(pg_engine, DAY, records, T1)
    expected_lines = sum(lines_in(r) for r in records)
    assert expected_lines > PER_DAY
    assert (raw.processed, raw.inserted, raw.updated, raw.unchanged, raw.deleted) == (PER_DAY, PER_DAY, 0, 0, 0)
    assert (built.processed, built.inserted, built.updated, built.unchanged) == (PER_DAY, PER_DAY, 0, 0)
    assert built.lines == expected_lines
    assert row_count(pg_engine, raw_work_orders) == PER_DAY
    assert row_count(pg_engine, work_orders) == PER_DAY
    assert row_count(pg_engine, work_order_lines) == expected_lines
    assert count_live_rows(pg_engine, work_orders, DAY, DAY) == PER_DAY
    # The stored totals are the input's, exactly.
    totals = column_by_id(pg_engine, work_orders, "total_amount")
    assert totals == {r["primaryKey"]: Decimal(str(r["total"])) for r in records}
    # Line amounts add up to the input's parts and labor totals, per invoice.
    with pg_engine.connect() as connection:
        sums = {
            (row.fullbay_id, row.line_type): row.amount
            for row in connection.execute(
                select(
                    work_order_lines.c.fullbay_id,
                    work_order_lines.c.line_type,
                    func.sum(work_order_lines.c.amount).label("amount"),
                ).group_by(work_order_lines.c.fullbay_id, work_order_lines.c.line_type)
            )
        }
    for record in records:
        assert sums.get((record["primaryKey"], "part"), Decimal(0)) == Decimal(str(record["partsTotal"]))
        assert sums.get((record["primaryKey"], "labor"), Decimal(0)) == Decimal(str(record["laborTotal"]))


def test_rerun_with_identical_records_changes_nothing(engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, PER_DAY, DAY)
    load(engine, DAY, records, T1, run_id="run-1")
    before = checksums(engine)
    raw_before = table_checksum(engine, raw_work_orders, exclude=["last_seen_at", "last_run_id", "fetched_at"])

    raw, built = load(engine, DAY, copy.deepcopy(records), T2, run_id="run-2")

    assert (raw.processed, raw.unchanged, raw.inserted, raw.updated, raw.deleted) == (PER_DAY, PER_DAY, 0, 0, 0)
    assert (built.processed, built.unchanged, built.inserted, built.updated, built.deleted) == (
        PER_DAY,
        PER_DAY,
        0,
        0,
        0,
    )
    assert built.lines == 0
    after = checksums(engine)
    assert after["fullbay_work_orders"] == before["fullbay_work_orders"]
    assert after["fullbay_work_order_lines"] == before["fullbay_work_order_lines"]
    assert table_checksum(engine, raw_work_orders, exclude=["last_seen_at", "last_run_id", "fetched_at"]) == raw_before
    # The rerun was seen: only the bookkeeping moved.
    assert after["fullbay_raw_work_orders"] != before["fullbay_raw_work_orders"]
    assert set(column_by_id(engine, raw_work_orders, "last_run_id").values()) == {"run-2"}
    assert row_count(engine, work_orders) == PER_DAY


# --------------------------------------------------------------------------- later answers


def test_later_as_of_updates_exactly_the_changed_invoices(pg_engine: Engine) -> None:
    first = invoices_for_day(SEED, DAY, PER_DAY, DAY)
    later = invoices_for_day(SEED, DAY, PER_DAY, DAY + timedelta(days=12))
    changed = {a["primaryKey"] for a, b in zip(first, later, strict=True) if content_hash(a) != content_hash(b)}
    assert 0 < len(changed) < PER_DAY, "the fixture data must mix changed and unchanged invoices"

    load(pg_engine, DAY, first, T1)
    lines_before = table_checksum(pg_engine, work_order_lines)
    raw, built = load(pg_engine, DAY, later, T2)

    assert raw.updated == len(changed)
    assert raw.unchanged == PER_DAY - len(changed)
    assert raw.inserted == 0
    assert built.updated == len(changed)
    assert built.unchanged == PER_DAY - len(changed)
    assert built.inserted == 0
    assert row_count(pg_engine, raw_work_orders) == PER_DAY
    assert row_count(pg_engine, work_orders) == PER_DAY
    with pg_engine.connect() as connection:
        distinct = connection.execute(select(func.count(func.distinct(work_orders.c.fullbay_id)))).scalar_one()
    assert distinct == PER_DAY

    balances = column_by_id(pg_engine, work_orders, "balance")
    assert balances == {r["primaryKey"]: Decimal(str(r["balance"])) for r in later}
    statuses = column_by_id(pg_engine, work_orders, "status")
    for record in later:
        if Decimal(str(record["balance"])) == 0:
            assert statuses[record["primaryKey"]] == "paid"
    updated_at = column_by_id(pg_engine, work_orders, "updated_at")
    assert {k for k, v in updated_at.items() if v == T2} == changed
    assert {k for k, v in updated_at.items() if v == T1} == {r["primaryKey"] for r in first} - changed
    # Only balances moved: the rebuilt invoices' lines are the same rows again.
    assert table_checksum(pg_engine, work_order_lines) == lines_before


def test_vanished_invoice_is_marked_deleted_then_comes_back(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, 10, DAY)
    gone = {records[2]["primaryKey"], records[7]["primaryKey"]}
    load(pg_engine, DAY, records, T1)
    lines_total = row_count(pg_engine, work_order_lines)

    raw, built = load(pg_engine, DAY, [r for r in records if r["primaryKey"] not in gone], T2)
    assert raw.deleted == 2 and built.deleted == 2
    assert raw.unchanged == 8 and built.unchanged == 8
    for table in (raw_work_orders, work_orders):
        assert row_count(pg_engine, table) == 10, "marked, not removed"
        deleted_at = column_by_id(pg_engine, table, "deleted_at")
        assert {k for k, v in deleted_at.items() if v is not None} == gone
        assert {deleted_at[k] for k in gone} == {T2}
        assert count_live_rows(pg_engine, table, DAY, DAY) == 8
    assert row_count(pg_engine, work_order_lines) == lines_total

    # A rerun of the same short answer does not delete them again (or anything else).
    raw, built = load(pg_engine, DAY, [r for r in records if r["primaryKey"] not in gone], T3)
    assert raw.deleted == 0 and built.deleted == 0

    raw, built = load(pg_engine, DAY, records, T3)
    assert raw.updated == 2 and raw.unchanged == 8 and raw.deleted == 0
    assert built.updated == 2 and built.unchanged == 8
    for table in (raw_work_orders, work_orders):
        assert all(v is None for v in column_by_id(pg_engine, table, "deleted_at").values())
        assert count_live_rows(pg_engine, table, DAY, DAY) == 10
    assert row_count(pg_engine, work_order_lines) == lines_total


def test_same_invoice_on_two_pages_gives_one_row(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, 10, DAY)
    answer = [*records[:6], copy.deepcopy(records[3]), *records[6:], copy.deepcopy(records[0])]
    raw, built = load(pg_engine, DAY, answer, T1)
    assert raw.duplicates == 2
    assert raw.processed == 10
    assert raw.inserted == 10
    assert built.inserted == 10
    assert built.lines == sum(lines_in(r) for r in records)
    assert row_count(pg_engine, raw_work_orders) == 10
    assert row_count(pg_engine, work_orders) == 10


def test_duplicate_in_a_later_batch_keeps_the_later_copy(pg_engine: Engine) -> None:
    count = BATCH_SIZE + 5
    records = [minimal(n) for n in range(count)]
    later_copy = {**minimal(0), "balance": 0}
    raw = load_raw_day(pg_engine, DAY, [*records, later_copy], now=T1)
    assert raw.duplicates == 1
    assert raw.processed == raw.inserted == count
    assert row_count(pg_engine, raw_work_orders) == count
    stored = column_by_id(pg_engine, raw_work_orders, "raw_data")["0"]
    assert stored == later_copy
    assert column_by_id(pg_engine, raw_work_orders, "content_hash")["0"] == content_hash(later_copy)


def test_duplicate_with_new_content_in_later_batch_counts_as_updated(pg_engine: Engine) -> None:
    load_raw_day(pg_engine, DAY, [minimal(0)], now=T1)
    records = [minimal(n) for n in range(BATCH_SIZE + 5)]
    later_copy = {**minimal(0), "balance": 0}
    raw = load_raw_day(pg_engine, DAY, [*records, later_copy], now=T2)
    # The stored row did change (to the later copy) ...
    assert column_by_id(pg_engine, raw_work_orders, "raw_data")["0"] == later_copy
    # ... so it should be counted as updated, not unchanged.
    assert (raw.updated, raw.unchanged) == (1, 0)


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("position", [0, BATCH_SIZE + 10], ids=["first-batch", "second-batch"])
def test_record_of_another_day_is_quarantined_and_the_rest_loads(pg_engine: Engine, position: int) -> None:
    load(pg_engine, DAY, invoices_for_day(SEED, DAY, 10, DAY), T1)
    # The first 10 have new balances; the rest are new; one record belongs to the next day.
    answer = invoices_for_day(SEED, DAY, BATCH_SIZE + 20, DAY + timedelta(days=12))
    stray = answer[position]["primaryKey"]
    answer[position]["invoiceDate"] = (DAY + timedelta(days=1)).isoformat()

    counts = load_raw_day(pg_engine, DAY, answer, run_id="run-2", now=T2)

    assert counts.quarantined == 1 and counts.processed == BATCH_SIZE + 20
    assert row_count(pg_engine, raw_work_orders) == BATCH_SIZE + 20 - (0 if position < 10 else 1)
    with pg_engine.connect() as connection:
        [row] = connection.execute(select(quarantine)).all()
    assert row.fullbay_id == stray and row.partition_key == DAY.isoformat()
    assert "is not the requested day" in row.reason
    assert json.loads(row.raw_text)["primaryKey"] == stray
    if position < 10:  # it was loaded before with the right date: present, not deleted
        assert column_by_id(pg_engine, raw_work_orders, "deleted_at")[stray] is None


def test_a_record_that_comes_back_placeable_leaves_the_quarantine(pg_engine: Engine) -> None:
    """The day's quarantine is what its latest answer could not place: fixed in Fullbay,
    the record loads and its quarantine row goes; an older answer changes neither."""
    answer = invoices_for_day(SEED, DAY, 5, DAY)
    fixed = copy.deepcopy(answer)
    answer[2]["invoiceDate"] = "not-a-date"
    t1, t2, t3 = T1, T1 + timedelta(hours=1), T1 + timedelta(hours=2)
    assert load_raw_day(pg_engine, DAY, answer, run_id="broken", now=t2, fetched_at=t2).quarantined == 1
    older = load_raw_day(pg_engine, DAY, fixed, run_id="older", now=t3, fetched_at=t1)
    assert older.stale == 4 and row_count(pg_engine, quarantine) == 1  # not the day's latest answer
    latest = load_raw_day(pg_engine, DAY, fixed, run_id="latest", now=t3, fetched_at=t3)
    assert latest.quarantined == 0 and row_count(pg_engine, quarantine) == 0
    assert row_count(pg_engine, raw_work_orders) == 5


def test_failure_in_the_middle_of_a_load_commits_nothing(pg_engine: Engine) -> None:
    load(pg_engine, DAY, invoices_for_day(SEED, DAY, 10, DAY), T1)
    before = checksums(pg_engine)
    answer = invoices_for_day(SEED, DAY, 1500, DAY + timedelta(days=12))
    yielded = 0

    def pages() -> Iterator[dict[str, Any]]:
        nonlocal yielded
        for record in answer:
            yielded += 1
            yield record
        raise ConnectionError("page 31 failed")

    with pytest.raises(ConnectionError, match="page 31"):
        load_raw_day(pg_engine, DAY, pages(), run_id="run-2", now=T2)

    assert yielded == 1500 > BATCH_SIZE  # the first batch was written inside the transaction
    assert checksums(pg_engine) == before
    assert row_count(pg_engine, raw_work_orders) == 10
    assert set(column_by_id(pg_engine, raw_work_orders, "last_run_id").values()) == {"run-1"}


def test_build_failure_leaves_work_orders_as_they_were(pg_engine: Engine) -> None:
    count = BATCH_SIZE + 5
    records = invoices_for_day(SEED, DAY, count, DAY)
    load(pg_engine, DAY, records[:5], T1)
    before = checksums(pg_engine)
    # The invoice sorted last (ids grow with the index) is refused by the database
    # itself (a trigger stands in for a constraint or a disk failure): the build
    # fails on its last batch, after the first batch was written.
    assert max(r["primaryKey"] for r in records) == records[-1]["primaryKey"]
    load_raw_day(pg_engine, DAY, records, now=T2)
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.fullbay_id = '" + records[-1]["primaryKey"] + "' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql; "
                "CREATE TRIGGER refuse BEFORE INSERT ON fullbay_work_orders FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )

    with pytest.raises(DBAPIError, match="disk full"):
        build_work_orders_day(pg_engine, DAY, zone=ZONE, source="getInvoices.php", now=T2)

    after = checksums(pg_engine)
    assert after["fullbay_work_orders"] == before["fullbay_work_orders"]
    assert after["fullbay_work_order_lines"] == before["fullbay_work_order_lines"]
    assert row_count(pg_engine, work_orders) == 5


def test_a_content_field_of_the_wrong_shape_is_a_field_issue_not_a_quarantine(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, 6, DAY)
    records[2]["ServiceOrder"] = [records[2]["ServiceOrder"]]  # storable JSON, but not an invoice's shape
    raw = load_raw_day(pg_engine, DAY, records, now=T1)
    built = build_work_orders_day(pg_engine, DAY, zone=ZONE, source="getInvoices.php", now=T1, run_id="run-1")
    assert (raw.inserted, raw.quarantined) == (6, 0)  # the raw table keeps what the API said
    assert (built.inserted, built.quarantined, built.field_issues) == (6, 0, 1)
    assert column_by_id(pg_engine, work_orders, "service_order_id")[records[2]["primaryKey"]] is None
    with pg_engine.connect() as connection:
        assert connection.execute(select(quarantine)).all() == []
        [row] = connection.execute(select(field_issues)).all()
    assert (row.fullbay_id, row.field_path, row.expected_type, row.last_run_id) == (
        records[2]["primaryKey"],
        "ServiceOrder",
        "object",
        "run-1",
    )


def test_field_issues_survive_reruns_unchanged_and_resolve_when_fixed(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, 4, DAY)
    for complaint in records[1]["ServiceOrder"]["Complaints"]:
        complaint["Corrections"][0]["laborTotal"] = "a lot"
    records[3]["total"] = {"amount": 1}
    load_raw_day(pg_engine, DAY, records, now=T1)
    first = build_work_orders_day(pg_engine, DAY, zone=ZONE, source="s", now=T1, run_id="run-1")
    n_complaints = len(records[1]["ServiceOrder"]["Complaints"])
    assert first.field_issues == n_complaints + 1
    with pg_engine.connect() as connection:
        lines = connection.execute(
            select(work_order_lines.c.amount).where(
                work_order_lines.c.fullbay_id == records[1]["primaryKey"], work_order_lines.c.line_type == "labor"
            )
        ).all()
    assert len([line for line in lines if line.amount is None]) == n_complaints  # kept, with NULL
    before = table_checksum(pg_engine, field_issues)
    load_raw_day(pg_engine, DAY, records, now=T2)
    build_work_orders_day(pg_engine, DAY, zone=ZONE, source="s", now=T2, run_id="run-2")
    assert table_checksum(pg_engine, field_issues) == before  # a rerun of the same data changes nothing
    records[3]["total"] = 12.5  # fixed upstream
    load_raw_day(pg_engine, DAY, records, now=T2)
    fixed = build_work_orders_day(pg_engine, DAY, zone=ZONE, source="s", now=T2, run_id="run-3")
    assert fixed.field_issues == n_complaints
    with pg_engine.connect() as connection:
        ids = set(connection.execute(select(field_issues.c.fullbay_id)).scalars())
    assert ids == {records[1]["primaryKey"]}


# --------------------------------------------------------------------------- lines and moves


def part_line_keys(invoice: dict[str, Any]) -> dict[str, Decimal]:
    return {
        str(p["primaryKey"]): (Decimal(str(p["quantity"])) * Decimal(str(p["sellingPrice"]))).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        for c in invoice["ServiceOrder"]["Complaints"]
        for r in c["Corrections"]
        for p in r["Parts"]
    }


def stored_lines(engine: Engine, fullbay_id: str, line_type: str) -> dict[str, Decimal]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                select(work_order_lines.c.source_key, work_order_lines.c.amount).where(
                    work_order_lines.c.fullbay_id == fullbay_id, work_order_lines.c.line_type == line_type
                )
            ).all()
        )


def test_changed_parts_replace_the_old_lines(pg_engine: Engine) -> None:
    records = invoices_for_day(SEED, DAY, 10, DAY)
    target = next(r for r in records if len(part_line_keys(r)) >= 2)
    key = target["primaryKey"]
    others_before = {r["primaryKey"]: part_line_keys(r) for r in records if r["primaryKey"] != key}
    load(pg_engine, DAY, records, T1)
    assert stored_lines(pg_engine, key, "part") == part_line_keys(target)

    changed = copy.deepcopy(target)
    corrections = [r for c in changed["ServiceOrder"]["Complaints"] for r in c["Corrections"] if r["Parts"]]
    removed = str(corrections[0]["Parts"].pop(0)["primaryKey"])
    corrections[-1]["Parts"].append(
        {"primaryKey": "99900001", "description": "NEW PART", "quantity": 3, "sellingPrice": 12.35, "taxable": "No"}
    )
    new_records = [changed if r["primaryKey"] == key else r for r in records]
    raw, built = load(pg_engine, DAY, new_records, T2)
    assert raw.updated == 1 and built.updated == 1 and built.unchanged == 9

    now_stored = stored_lines(pg_engine, key, "part")
    assert removed not in now_stored
    assert now_stored["99900001"] == Decimal("37.05")
    assert now_stored == part_line_keys(changed)
    for other, expected in others_before.items():
        assert stored_lines(pg_engine, other, "part") == expected
    assert row_count(pg_engine, work_order_lines) == sum(lines_in(r) for r in new_records)


@pytest.mark.parametrize("order", ["old-day-first", "new-day-first"])
def test_invoice_moved_to_another_day_ends_up_once_on_the_new_day(pg_engine: Engine, order: str) -> None:
    day2 = DAY + timedelta(days=1)
    records = invoices_for_day(SEED, DAY, 6, DAY)
    moved = copy.deepcopy(records[4])
    moved["invoiceDate"] = day2.isoformat()
    key = moved["primaryKey"]
    load(pg_engine, DAY, records, T1)

    rest = [r for r in records if r["primaryKey"] != key]
    steps = [(DAY, rest), (day2, [moved])]
    if order == "new-day-first":
        steps.reverse()
    for day, answer in steps:
        load(pg_engine, day, answer, T2)

    for table in (raw_work_orders, work_orders):
        with pg_engine.connect() as connection:
            rows = connection.execute(
                select(table.c.invoice_date, table.c.deleted_at).where(table.c.fullbay_id == key)
            ).all()
        assert [tuple(row) for row in rows] == [(day2, None)], table.name
        assert count_live_rows(pg_engine, table, DAY, DAY) == 5
        assert count_live_rows(pg_engine, table, day2, day2) == 1
        assert row_count(pg_engine, table) == 6
    assert stored_lines(pg_engine, key, "part") == part_line_keys(moved)


def test_timestamps_keep_their_instant_on_every_backend(engine: Engine) -> None:
    """Fullbay's zone-less times are read in the shop's zone; SQLite must not drop the offset."""
    chicago = ZoneInfo("America/Chicago")
    invoice = invoices_for_day(7, DAY, 1, DAY)[0]
    load_raw_day(engine, DAY, [invoice], now=T1)
    build_work_orders_day(engine, DAY, zone=chicago, source="test", now=T1)
    expected = datetime.strptime(invoice["created"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=chicago)
    with engine.connect() as connection:
        created, updated = connection.execute(select(work_orders.c.created_at, work_orders.c.updated_at)).one()
    assert created == expected and created.utcoffset() is not None
    assert updated == T1


def test_an_older_answer_never_overwrites_a_newer_one(pg_engine: Engine) -> None:
    """Two runs of one day that fetched at different times, committing in the wrong order."""
    older = invoices_for_day(SEED, DAY, 20, DAY)
    newer = invoices_for_day(SEED, DAY, 20, DAY + timedelta(days=30))
    newer_ids = {r["primaryKey"] for r in newer}
    assert {content_hash(r) for r in older} != {content_hash(r) for r in newer}
    load_raw_day(pg_engine, DAY, newer[:15], run_id="late-fetch", now=T3, fetched_at=T2)
    counts = load_raw_day(pg_engine, DAY, older, run_id="early-fetch", now=T3, fetched_at=T1)

    assert counts.stale == 15 and counts.inserted == 5
    hashes = column_by_id(pg_engine, raw_work_orders, "content_hash")
    for record in newer[:15]:
        assert hashes[record["primaryKey"]] == content_hash(record)
    # The older answer did not see invoice 15..19 of the newer one missing: nothing deleted.
    assert all(v is None for v in column_by_id(pg_engine, raw_work_orders, "deleted_at").values())
    assert set(hashes) == newer_ids
