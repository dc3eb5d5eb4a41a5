"""Database faults: a connection killed mid-load, an unreachable server, concurrent
loads of the same days, and answers that commit out of the order they were fetched.

Kill points are chosen by PostgreSQL locks the test holds (never by sleeping): the
load blocks on a lock the test took, the test sees it waiting in pg_stat_activity,
terminates it with pg_terminate_backend, then lets go.

How concurrent loads are serialised: each day is loaded in one transaction per
table, which first takes a transaction-scoped advisory lock for (table, day)
(``day_load.lock_partition``); a second load of the same day waits for the first to
commit, then sees its rows. A load never overwrites a row that came from an answer
fetched later than its own (``fetched_at``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError

from fullbay_dagster.defs.assets import dropped_connection
from fullbay_dagster.fullbay.records import content_hash
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse import loader
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.schema import ingestion_metadata, raw_work_orders, work_orders
from fullbay_dagster_tests.reliability import harness
from fullbay_dagster_tests.reliability.harness import DAY, ZONE, Background, checksums, wait_until

T0 = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
T1 = datetime(2025, 4, 2, 6, 0, tzinfo=UTC)
T2 = datetime(2025, 4, 3, 6, 0, tzinfo=UTC)
T3 = datetime(2025, 4, 4, 6, 0, tzinfo=UTC)
BIG_DAY = 1500  # more than one of the loader's 1000-record batches


@pytest.fixture()
def engine(pg_url: str) -> Iterator[Engine]:
    engine = harness.migrated_engine(pg_url)
    yield engine
    engine.dispose()


def terminate(engine: Engine, application_name: str) -> list[tuple[int, bool]]:
    """pg_terminate_backend every connection of ``application_name`` in this database;
    returns (pid, had it written anything in its transaction) for each."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid, backend_xid IS NOT NULL AS wrote, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": application_name},
        ).all()
        connection.commit()
    return [(row.pid, row.wrote) for row in rows]


def terminate_waiting(engine: Engine, application_name: str = "fullbay-dagster") -> list[tuple[int, bool]]:
    """Terminate the connections of ``application_name`` that wait for a lock."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid, backend_xid IS NOT NULL AS wrote, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name AND wait_event_type = 'Lock'"
            ),
            {"name": application_name},
        ).all()
        connection.commit()
    return [(row.pid, row.wrote) for row in rows]


def norm(value: Any) -> Any:
    """JSON value for comparison across a JSONB round trip (numbers by value)."""
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", str(Decimal(repr(value)).normalize()))
    return value


def stored(engine: Engine) -> dict[str, tuple[Any, Decimal | None, Any]]:
    """fullbay_id -> (raw JSON, work-order balance, raw deleted_at)."""
    with engine.connect() as connection:
        raw = {r.fullbay_id: (r.raw_data, r.deleted_at) for r in connection.execute(select(raw_work_orders))}
        balances = dict(connection.execute(select(work_orders.c.fullbay_id, work_orders.c.balance)).all())
    return {key: (norm(data), balances.get(key), deleted) for key, (data, deleted) in raw.items()}


# --------------------------------------------------------------------------- killed connections


def test_connection_killed_mid_raw_load_commits_nothing_and_a_rerun_converges(pg_url: str) -> None:
    victim_name = f"rel-victim-{uuid.uuid4().hex[:8]}"
    victim = harness.migrated_engine(pg_url, application_name=victim_name)
    observer = make_engine(pg_url, application_name="rel-observer")
    prior = invoices_for_day(harness.SEED, DAY, 10, DAY)
    answer = invoices_for_day(harness.SEED, DAY, BIG_DAY, harness.AS_OF)
    killed: list[tuple[int, bool]] = []
    try:
        harness.load_directly(victim, DAY, prior, T1)
        before = checksums(victim, bookkeeping=True)

        def records() -> Iterator[dict[str, Any]]:
            for n, record in enumerate(answer):
                if n == 1200:  # past the first batch of 1000, which was written in the open transaction
                    killed.extend(terminate(observer, victim_name))
                yield record

        with pytest.raises(OperationalError, match="terminat"):
            loader.load_raw_day(victim, DAY, records(), run_id="rerun", now=T2, fetched_at=T2)
        assert len(killed) == 1 and killed[0][1], "one connection, killed after it had written"
        assert checksums(victim, bookkeeping=True) == before

        # A rerun on the same engine (its pool must drop the dead connection) converges.
        loader.load_raw_day(victim, DAY, answer, run_id="rerun", now=T2, fetched_at=T2)
        loader.build_work_orders_day(victim, DAY, zone=ZONE, source="rerun", now=T2)
        assert_equals_clean_load(victim, prior, answer)
        assert len(harness.ids(victim, work_orders)) == BIG_DAY
    finally:
        victim.dispose()
        observer.dispose()


def assert_equals_clean_load(victim: Engine, prior: list[dict[str, Any]], answer: list[dict[str, Any]]) -> None:
    """The victim, after its rerun, equals a fresh database that loaded ``prior`` then ``answer``."""
    with harness.temp_database("clean") as clean_url:
        clean = harness.migrated_engine(clean_url)
        harness.load_directly(clean, DAY, prior, T1)
        loader.load_raw_day(clean, DAY, answer, run_id="rerun", now=T2, fetched_at=T2)
        loader.build_work_orders_day(clean, DAY, zone=ZONE, source="rerun", now=T2)
        assert checksums(victim, bookkeeping=True) == checksums(clean, bookkeeping=True)
        clean.dispose()


def test_connection_killed_mid_build_leaves_work_orders_as_they_were(pg_url: str) -> None:
    victim_name = f"rel-victim-{uuid.uuid4().hex[:8]}"
    victim = harness.migrated_engine(pg_url, application_name=victim_name)
    observer = make_engine(pg_url, application_name="rel-observer")
    prior = invoices_for_day(harness.SEED, DAY, 10, DAY)
    answer = invoices_for_day(harness.SEED, DAY, BIG_DAY, harness.AS_OF)
    try:
        harness.load_directly(victim, DAY, prior, T1)
        loader.load_raw_day(victim, DAY, answer, run_id="rerun", now=T2, fetched_at=T2)
        before = checksums(victim, bookkeeping=True)
        with observer.connect() as blocker:
            blocker.execute(text("LOCK TABLE fullbay_work_order_lines IN SHARE ROW EXCLUSIVE MODE"))
            build = Background(
                lambda: loader.build_work_orders_day(victim, DAY, zone=ZONE, source="rerun", now=T2), "build"
            )
            build.start()
            wait_until(lambda: harness.backends_waiting(observer, victim_name) == 1, "the build to reach the lines")
            killed = terminate_waiting(observer, victim_name)
            blocker.rollback()
        assert len(killed) == 1 and killed[0][1], "killed after writing work orders in its transaction"
        with pytest.raises(OperationalError, match="terminat"):
            build.result()
        assert checksums(victim, bookkeeping=True) == before

        loader.build_work_orders_day(victim, DAY, zone=ZONE, source="rerun", now=T2)
        assert_equals_clean_load(victim, prior, answer)
    finally:
        victim.dispose()
        observer.dispose()


def test_connection_killed_during_a_dagster_run_rolls_back_the_day_and_the_step_retries_to_a_clean_load(
    pg_url: str, engine: Engine
) -> None:
    """A two-day run: day 1 loads and commits; the test holds a row of day 2, so the
    run's day-2 transaction waits on it after writing; the test kills that connection.
    The day rolls back, Dagster retries the step (a dropped connection is transient),
    and the run ends as a clean load of both days would."""
    day1, day2 = DAY, DAY + timedelta(days=1)
    for day in (day1, day2):
        harness.load_directly(engine, day, harness.truth(day, day, as_of=harness.EARLIER_AS_OF), T1)
    last_of_day2 = max(r["primaryKey"] for r in harness.truth(day2, day2))
    with Simulator(harness.sim_config()) as simulator, engine.connect() as blocker:
        blocker.execute(
            select(raw_work_orders.c.fullbay_id).where(raw_work_orders.c.fullbay_id == last_of_day2).with_for_update()
        )
        run = Background(lambda: harness.run_job(day1, day2, database_url=pg_url, api_url=simulator.url), "run")
        run.start()
        wait_until(lambda: harness.backends_waiting(engine) == 1, "the run's day-2 load to wait for the row")
        killed = terminate_waiting(engine)
        blocker.rollback()
        outcome = run.result()
    assert len(killed) == 1 and killed[0][1], "killed inside the day-2 transaction, after it had written"
    assert outcome.success, outcome.error
    assert outcome.step_retries == 1
    assert checksums(engine) == harness.clean_reference(day1, day2)
    with engine.connect() as connection:
        rows = connection.execute(select(ingestion_metadata.c.status, ingestion_metadata.c.error_message)).all()
    # The retried attempt's rows end as they would have: the dropped connection was noted, then cleared.
    assert sorted(rows) == [("success", None), ("success", None)]


def test_database_unreachable_from_db_parts_names_host_and_port_without_the_password(
    scrubbed_env: pytest.MonkeyPatch,
) -> None:
    password = "PW-canary-4d2a9f61"
    with Simulator(harness.sim_config()) as simulator:
        for name, value in {
            "FULLBAY_API_KEY": harness.KEY,
            "FULLBAY_API_BASE_URL": simulator.url,
            "FULLBAY_PUBLIC_IP": harness.IP,
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "9",
            "DB_NAME": "warehouse",
            "DB_USER": "fullbay",
            "DB_PASSWORD": password,
        }.items():
            scrubbed_env.setenv(name, value)
        outcome = harness.run_job(DAY, resources={})  # everything from the environment
        assert simulator.requests() == [], "it failed at the start, before calling Fullbay"
    assert not outcome.success
    assert "127.0.0.1:9/warehouse" in outcome.error
    assert "Cannot use the warehouse" in outcome.error
    assert password not in outcome.error
    assert all(password not in message for message in outcome.messages)


# --------------------------------------------------------------------------- concurrent runs


def test_two_runs_of_the_same_day_at_once_take_turns_and_equal_one_clean_run(
    pg_url: str, engine: Engine, clean_day: Callable[..., dict[str, str]]
) -> None:
    with Simulator(harness.sim_config()) as simulator, engine.connect() as blocker:
        # Both runs fetch, then block inside their load until the test lets go.
        blocker.execute(text("LOCK TABLE fullbay_raw_work_orders IN SHARE ROW EXCLUSIVE MODE"))
        threads = [
            Background(lambda: harness.run_job(DAY, database_url=pg_url, api_url=simulator.url), f"run-{n}")
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: harness.backends_waiting(engine) == 2, "both runs to be inside their load")
        # One holds the day's advisory lock (and waits for the table), the other waits for the day.
        assert harness.advisory_locks(engine) == (1, 1)
        blocker.rollback()
        outcomes = [thread.result() for thread in threads]
    assert all(o.success for o in outcomes), [o.error for o in outcomes]
    assert checksums(engine) == clean_day()
    live = harness.ids(engine, work_orders)
    assert sorted(live) == sorted(r["primaryKey"] for r in harness.truth(DAY, DAY))
    assert len(harness.ids(engine, raw_work_orders, live_only=False)) == harness.PER_DAY


def test_overlapping_backfills_at_once_keep_the_newest_answer_of_every_day(pg_url: str, engine: Engine) -> None:
    """Days 1-10 fetched as of an earlier date, days 5-14 fetched later (balances paid
    since); both load at the same time. Days 1-4 must hold the first answer, 5-14 the second."""
    first = date(2025, 3, 1)
    a_days, b_days = (first, first + timedelta(days=9)), (first + timedelta(days=4), first + timedelta(days=13))
    early, late = date(2025, 3, 20), harness.AS_OF
    settings = {"invoices_per_day": 4, "page_size": 50}
    with Simulator(harness.sim_config(as_of=early, **settings)) as simulator, engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE fullbay_raw_work_orders IN SHARE ROW EXCLUSIVE MODE"))
        run_a = Background(lambda: harness.run_job(*a_days, database_url=pg_url, api_url=simulator.url), "a")
        run_a.start()
        wait_until(lambda: harness.backends_waiting(engine) == 1, "backfill 1-10 to have fetched and be loading")
        simulator.set_as_of(late)
        run_b = Background(lambda: harness.run_job(*b_days, database_url=pg_url, api_url=simulator.url), "b")
        run_b.start()
        wait_until(lambda: harness.backends_waiting(engine) == 2, "backfill 5-14 to be loading too")
        blocker.rollback()
        outcomes = [run_a.result(), run_b.result()]
    assert all(o.success for o in outcomes), [o.error for o in outcomes]

    expected = harness.truth(first, b_days[0] - timedelta(days=1), 4, early) + harness.truth(*b_days, 4, late)
    got = stored(engine)
    assert sorted(got) == sorted(r["primaryKey"] for r in expected)
    for record in expected:
        data, balance, deleted = got[record["primaryKey"]]
        assert data == norm(record)
        assert balance == Decimal(str(record["balance"]))
        assert deleted is None
    # And the same as clean runs in a fresh database: days 1-4 early, days 5-14 late.
    with harness.temp_database("clean") as clean_url:
        with Simulator(harness.sim_config(as_of=early, **settings)) as simulator:
            before_b = b_days[0] - timedelta(days=1)
            assert harness.run_job(first, before_b, database_url=clean_url, api_url=simulator.url).success
        with Simulator(harness.sim_config(as_of=late, **settings)) as simulator:
            assert harness.run_job(*b_days, database_url=clean_url, api_url=simulator.url).success
        clean = make_engine(clean_url)
        assert checksums(engine) == checksums(clean)
        clean.dispose()


# --------------------------------------------------------------------------- later answers


def test_a_balance_paid_later_updates_the_row_instead_of_duplicating_it(
    pg_url: str, engine: Engine, clean_day: Callable[..., dict[str, str]]
) -> None:
    earlier = harness.truth(DAY, DAY, as_of=harness.EARLIER_AS_OF)
    later = harness.truth(DAY, DAY)
    changed = {a["primaryKey"] for a, b in zip(earlier, later, strict=True) if content_hash(a) != content_hash(b)}
    assert 0 < len(changed) <= len(later)
    with Simulator(harness.sim_config(as_of=harness.EARLIER_AS_OF)) as simulator:
        assert harness.run_job(DAY, database_url=pg_url, api_url=simulator.url).success
        simulator.set_as_of(harness.AS_OF)
        outcome = harness.run_job(DAY, database_url=pg_url, api_url=simulator.url)
    assert outcome.success
    assert outcome.metadata["work_orders"]["updated"] == len(changed)
    assert outcome.metadata["work_orders"]["inserted"] == 0
    assert sorted(harness.ids(engine, work_orders)) == sorted(r["primaryKey"] for r in later)
    assert checksums(engine) == clean_day()


@pytest.mark.parametrize("order", ["older-commits-first", "older-commits-last"])
def test_loads_converge_whatever_order_two_answers_commit_in(engine: Engine, order: str) -> None:
    """Two answers for one day, fetched at T1 (older, lacking two invoices) and T2."""
    older = harness.truth(DAY, DAY, as_of=harness.EARLIER_AS_OF)[:10]
    newer = harness.truth(DAY, DAY)
    loads = [(older, T1, "older"), (newer, T2, "newer")]
    if order == "older-commits-last":
        loads.reverse()
    counts = []
    for records, fetched_at, run_id in loads:
        counts.append(loader.load_raw_day(engine, DAY, records, run_id=run_id, now=T3, fetched_at=fetched_at))
        loader.build_work_orders_day(engine, DAY, zone=ZONE, source=run_id, now=T3)
    if order == "older-commits-last":
        assert counts[1].stale == len(older)
        assert counts[1].deleted == 0, "an older answer lacking an invoice must not delete a newer row"
    with harness.temp_database("clean") as clean_url:
        clean = harness.migrated_engine(clean_url)
        loader.load_raw_day(clean, DAY, newer, run_id="newer", now=T3, fetched_at=T2)
        loader.build_work_orders_day(clean, DAY, zone=ZONE, source="newer", now=T3)
        assert checksums(engine) == checksums(clean)
        clean.dispose()


def test_an_older_answer_committing_last_does_not_revive_an_invoice_a_newer_answer_found_gone(
    engine: Engine,
) -> None:
    everything = harness.truth(DAY, DAY, as_of=harness.EARLIER_AS_OF)
    gone = {r["primaryKey"] for r in everything[-2:]}  # voided in Fullbay between the two fetches
    newer = [r for r in harness.truth(DAY, DAY) if r["primaryKey"] not in gone]
    loader.load_raw_day(engine, DAY, everything, run_id="yesterday", now=T0, fetched_at=T0)
    loader.load_raw_day(engine, DAY, newer, run_id="newer", now=T3, fetched_at=T2)
    loader.load_raw_day(engine, DAY, everything, run_id="older", now=T3, fetched_at=T1)  # fetched T1, commits last
    deleted = {key for key, (_, _, deleted_at) in stored(engine).items() if deleted_at is not None}
    assert deleted == gone


# --------------------------------------------------------------------------- Dagster: fetched early, committed late


def _gated_older_run(pg_url: str, older: list[dict[str, Any]], newer_run: Callable[[], harness.RunOutcome]):  # type: ignore[no-untyped-def]
    """Run A fetches ``older`` but its request is held; meanwhile ``newer_run`` runs to
    the end; then A's answer is let go, so A (fetched first) commits last."""
    with harness.ContractServer(older) as server:
        server.hold.clear()
        run_a = Background(lambda: harness.run_job(DAY, database_url=pg_url, api_url=server.url), "early-fetch")
        run_a.start()
        wait_until(server.arrived.is_set, "run A's request to reach the server")
        newer = newer_run()
        server.hold.set()
        return run_a.result(), newer


def test_a_run_that_fetched_earlier_but_commits_later_does_not_overwrite(
    pg_url: str, engine: Engine, clean_day: Callable[..., dict[str, str]]
) -> None:
    older = harness.truth(DAY, DAY, as_of=harness.EARLIER_AS_OF)
    assert {content_hash(r) for r in older} != {content_hash(r) for r in harness.truth(DAY, DAY)}
    with Simulator(harness.sim_config()) as simulator:
        early, late = _gated_older_run(
            pg_url, older, lambda: harness.run_job(DAY, database_url=pg_url, api_url=simulator.url)
        )
    assert late.success and early.success, (late.error, early.error)
    assert early.metadata["raw_work_orders"]["stale_skipped"] == len(older)
    assert checksums(engine) == clean_day()


def test_a_run_that_fetched_earlier_does_not_revive_a_voided_invoice(pg_url: str, engine: Engine) -> None:
    everything = harness.truth(DAY, DAY, as_of=harness.EARLIER_AS_OF)
    gone = {r["primaryKey"] for r in everything[-2:]}
    newer = [r for r in harness.truth(DAY, DAY) if r["primaryKey"] not in gone]
    with harness.ContractServer(everything) as server:
        assert harness.run_job(DAY, database_url=pg_url, api_url=server.url).success  # yesterday's load
    with harness.ContractServer(newer) as later_server:
        early, late = _gated_older_run(
            pg_url, everything, lambda: harness.run_job(DAY, database_url=pg_url, api_url=later_server.url)
        )
    assert late.success and early.success
    assert sorted(harness.ids(engine, work_orders)) == sorted(r["primaryKey"] for r in newer)


def test_only_a_lost_connection_is_retried_not_what_the_database_refused(pg_url: str) -> None:
    """psycopg2's own errors (a background COPY's) by SQLSTATE: a statement timeout would
    only repeat; a terminated backend is a lost connection."""
    url = normalise_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with closing(psycopg2.connect(url)) as victim, closing(psycopg2.connect(url)) as admin:
        victim.autocommit = admin.autocommit = True
        with victim.cursor() as cursor, pytest.raises(psycopg2.OperationalError) as refused:
            cursor.execute("SET statement_timeout = 1; SELECT pg_sleep(1)")
        assert refused.value.pgcode == "57014" and not dropped_connection(refused.value)
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (victim.get_backend_pid(),))
        with victim.cursor() as cursor, pytest.raises(psycopg2.OperationalError) as lost:
            cursor.execute("SELECT 1")
        assert dropped_connection(lost.value)
