"""What the reliability tests and ``scripts/reliability_report.py`` share.

Throwaway PostgreSQL databases, the simulator with fixed data, real Dagster runs of
``fullbay_daily_job`` (in process, on an ephemeral instance), observations of a run
(outcome, error text, requests, client and step retries), checksums of the
warehouse tables without their bookkeeping columns, and the fault matrix itself.

Nothing here decides whether an outcome is right: the tests and the report do,
from expectations computed independently (the simulator's ground truth, a clean
run in another database, page arithmetic).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult
from sqlalchemy import Engine, Table, create_engine, func, make_url, select, text

from fullbay_dagster.defs.partitions import range_tags
from fullbay_dagster.defs.resources import AlertsResource, FullbayAPIResource, WarehouseResource, resources_from_env
from fullbay_dagster.defs.schedules import JOB_NAME
from fullbay_dagster.defs.settings import load_settings
from fullbay_dagster.fullbay.auth import make_token, today_in
from fullbay_dagster.fullbay.simulator import DATA_FAULT_KINDS, DEFAULT_FAULT_KINDS, Simulator, SimulatorConfig
from fullbay_dagster.fullbay.synthetic import invoices_for_day
from fullbay_dagster.warehouse import loader, migrate
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster.warehouse.runs import RunLog
from fullbay_dagster.warehouse.schema import quarantine, raw_work_orders, work_order_lines, work_orders
from fullbay_dagster_tests.defs_loader import load_definitions

SERVER_URL = os.environ.get("FULLBAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KEY = "reliability-key-0b7d4c1e-5a3f-4e61-9c2d-8f1a6b3e7d90"
IP = "127.0.0.1"
SEED = 3
DAY = date(2025, 3, 12)
AS_OF = date(2025, 4, 20)  # the simulated "today" of a clean run: balances as of then
EARLIER_AS_OF = DAY + timedelta(days=1)  # what was loaded before a fault run
PER_DAY = 12
PAGE_SIZE = 5
START_DATE = "2025-01-01"
ZONE = ZoneInfo("UTC")

# Columns a rerun or a different run is expected to move: when a copy was seen,
# by which run. Everything else must be byte-for-byte the same as a clean run's.
BOOKKEEPING: dict[str, tuple[str, ...]] = {
    raw_work_orders.name: ("first_seen_at", "last_seen_at", "last_changed_at", "last_run_id", "fetched_at"),
    work_orders.name: ("updated_at", "ingestion_timestamp", "ingestion_source"),
    work_order_lines.name: (),
    quarantine.name: ("first_seen_at", "last_seen_at", "last_run_id"),
}
TABLES: tuple[Table, ...] = (raw_work_orders, work_orders, work_order_lines, quarantine)

# A client tuned for tests: no pacing, short waits. The client's own backoff
# (up to ~1 s per retry) is not configurable through the resource.
FAST_CLIENT: dict[str, Any] = {
    "min_interval": 0.0,
    "max_attempts": 4,
    "retry_after_cap": 0.05,
    "read_timeout": 5.0,
    "connect_timeout": 2.0,
    "step_retries": 2,
    "step_retry_wait": 0.05,
}

_RETRY_LINE = re.compile(r"; retry \d+/\d+ in ([\d.]+)s")
# Level of Dagster's console logger in runs (the event log keeps everything anyway);
# the report script raises it to keep its output readable.
CONSOLE_LOG_LEVEL = {"level": "DEBUG"}


# --------------------------------------------------------------------------- databases


def admin_engine() -> Engine:
    return create_engine(normalise_url(SERVER_URL), isolation_level="AUTOCOMMIT")


@contextmanager
def temp_database(purpose: str = "rel") -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards; yields its URL."""
    name = f"fullbay_rel_{purpose}_{uuid.uuid4().hex[:10]}"
    admin = admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrated_engine(url: str, application_name: str = "fullbay-rel-test") -> Engine:
    engine = make_engine(url, application_name=application_name)
    migrate.upgrade(engine)
    return engine


def checksums(engine: Engine, *, bookkeeping: bool = False) -> dict[str, str]:
    """Digest of every warehouse table; without bookkeeping columns unless asked."""
    return {
        table.name: loader.table_checksum(engine, table, exclude=() if bookkeeping else BOOKKEEPING[table.name])
        for table in TABLES
    }


def row_count(engine: Engine, table: Table, *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def ids(engine: Engine, table: Table, live_only: bool = True) -> list[str]:
    """Every fullbay_id in ``table`` (a list: a duplicate would show twice)."""
    query = select(table.c.fullbay_id)
    if live_only:
        query = query.where(table.c.deleted_at.is_(None))
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def truth(first: date, last: date, per_day: int = PER_DAY, as_of: date = AS_OF, seed: int = SEED) -> list[dict]:
    """The invoices the simulator serves for ``first..last``: its ground truth."""
    days = (last - first).days + 1
    return [r for n in range(days) for r in invoices_for_day(seed, first + timedelta(days=n), per_day, as_of)]


def load_directly(engine: Engine, day: date, records: Sequence[dict[str, Any]], now: datetime) -> None:
    """Load a day with the loader functions, outside Dagster (a prior state)."""
    loader.load_raw_day(engine, day, records, run_id="prior-load", now=now)
    loader.build_work_orders_day(engine, day, zone=ZONE, source="prior-load", now=now)


# --------------------------------------------------------------------------- simulator


def sim_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "api_key": KEY,
        "seed": SEED,
        "invoices_per_day": PER_DAY,
        "page_size": PAGE_SIZE,
        "expected_ip": IP,
        "as_of": AS_OF,
        "retry_after": 1,
        "slow_seconds": 1.0,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def fault_counts(requests: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in requests:
        if request["fault"]:
            counts[request["fault"]] = counts.get(request["fault"], 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- Dagster runs


@dataclass
class RunOutcome:
    result: ExecuteInProcessResult
    success: bool
    run_id: str
    error: str  # the step failures' messages, causes included ("" when the run succeeded)
    step_retries: int  # STEP_UP_FOR_RETRY events: Dagster retried the fetch step
    client_retries: int  # the client's own retries, counted from its log lines
    retry_delays: list[float]  # the delays the client announced before each retry
    metadata: dict[str, dict[str, Any]]  # asset -> materialization metadata (last one)
    checks: dict[str, tuple[bool, str]]  # check -> (passed, severity)
    messages: list[str] = field(default_factory=list)  # every user log message of the run
    log_entries: list[Any] = field(default_factory=list)  # the run's event log, as stored
    stored_run: Any = None  # the DagsterRun as the instance stored it


def _error_text(error: Any) -> str:
    parts = []
    while error is not None:
        parts.append(f"{error.cls_name}: {error.message}")
        error = error.cause or error.context
    return "\n".join(parts)


def api_resource(base_url: str, api_key: str = KEY, public_ip: str | None = IP) -> FullbayAPIResource:
    return FullbayAPIResource(api_key=api_key, base_url=base_url, public_ip=public_ip)


_DEFINITIONS: dict[str, Definitions] = {}
_DEFINITIONS_LOCK = threading.Lock()


def definitions(start_date: str = START_DATE) -> Definitions:
    """The code location's definitions for a start date, loaded once (runs use threads)."""
    with _DEFINITIONS_LOCK:
        if start_date not in _DEFINITIONS:
            _DEFINITIONS[start_date] = load_definitions({"FULLBAY_START_DATE": start_date})
        return _DEFINITIONS[start_date]


def run_job(
    first: date,
    last: date | None = None,
    *,
    database_url: str | None = None,
    api_url: str | None = None,
    resources: dict[str, Any] | None = None,
    client: dict[str, Any] | None = None,
    api_key: str = KEY,
    public_ip: str | None = IP,
    instance: DagsterInstance | None = None,
    env: dict[str, str] | None = None,
) -> RunOutcome:
    """One run of ``fullbay_daily_job`` over ``first..last``, never raising for a failed run.

    Resources are given explicitly (thread-safe: nothing read from os.environ), unless
    ``resources`` replaces them (e.g. EnvVar-configured ones)."""
    defs = definitions((env or {}).get("FULLBAY_START_DATE", START_DATE))
    if resources is None:
        assert database_url is not None and api_url is not None
        resources = {
            "fullbay": api_resource(api_url, api_key, public_ip),
            "warehouse": WarehouseResource(database_url=database_url),
            "alerts": AlertsResource(),
        }
    # the environment's resources as of now (the definitions were loaded once, earlier)
    from_env = resources_from_env(load_settings())
    defs = Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, resources={**from_env, **resources}
    )
    job = defs.resolve_job_def(JOB_NAME)
    tags = range_tags(first.isoformat(), (last or first).isoformat())
    own = instance is None
    instance = instance or DagsterInstance.ephemeral()
    run_config = {
        "loggers": {"console": {"config": {"log_level": CONSOLE_LOG_LEVEL["level"]}}},
        # the client's tuning is run config of the raw step, apart from the credentials
        "ops": {"raw_work_orders": {"config": {**FAST_CLIENT, **(client or {})}}},
    }
    try:
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config=run_config)
        return observe(result, instance)
    finally:
        if own:  # its SQLite connections belong to this thread: close them here, not in a GC elsewhere
            instance.dispose()


def observe(result: ExecuteInProcessResult, instance: DagsterInstance) -> RunOutcome:
    events = result.all_events
    failures = [e for e in events if e.event_type_value == "STEP_FAILURE"]
    error = "\n".join(_error_text(e.event_specific_data.error) for e in failures)
    entries = list(instance.all_logs(result.run_id))
    messages = [entry.user_message for entry in entries if entry.user_message]
    delays = [float(m.group(1)) for message in messages for m in _RETRY_LINE.finditer(message)]
    metadata: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        # each day's event carries its own counts: sum them; run_* figures are the run's, once
        materialization = event.materialization
        merged = metadata.setdefault(materialization.asset_key.to_user_string(), {})
        for key, value in materialization.metadata.items():
            number = value.value
            if isinstance(number, int) and not isinstance(number, bool) and not key.startswith("run_"):
                merged[key] = merged.get(key, 0) + number
            else:
                merged[key] = number
    checks: dict[str, tuple[bool, str]] = {}
    for c in result.get_asset_check_evaluations():  # one per day: a check passed if it passed every day
        passed = c.passed and checks.get(c.check_name, (True, ""))[0]
        checks[c.check_name] = (passed, c.severity.value if c.severity else "")
    return RunOutcome(
        result=result,
        success=result.success,
        run_id=result.run_id,
        error=error,
        step_retries=sum(1 for e in events if e.event_type_value == "STEP_UP_FOR_RETRY"),
        client_retries=len(delays),
        retry_delays=delays,
        metadata=metadata,
        checks=checks,
        messages=messages,
        log_entries=entries,
        stored_run=instance.get_run_by_id(result.run_id),
    )


def clean_reference(first: date, last: date | None = None, *, client: dict[str, Any] | None = None, **sim: Any) -> dict:
    """Business checksums of one clean (fault-free) run in a fresh database."""
    with temp_database("clean") as url, Simulator(sim_config(**sim)) as simulator:
        outcome = run_job(first, last, database_url=url, api_url=simulator.url, client=client)
        assert outcome.success, f"the clean reference run failed: {outcome.error}"
        engine = make_engine(url)
        try:
            return checksums(engine)
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- PostgreSQL sessions


def backends_waiting(engine: Engine, application_name: str = "fullbay-dagster") -> int:
    """Connections of ``application_name`` in this database waiting for a lock."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = :name AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            ).scalar_one()
        )


def advisory_locks(engine: Engine) -> tuple[int, int]:
    """(granted, waiting) advisory locks in this database."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT l.granted, count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = current_database() GROUP BY l.granted"
            )
        ).all()
    counts = dict(rows)
    return counts.get(True, 0), counts.get(False, 0)


def wait_until(condition: Callable[[], bool], what: str, limit: float = 120.0, every: float = 0.02) -> None:
    """Poll ``condition``; a guard against hanging, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


class Background(threading.Thread):
    """Run ``target`` in a thread, keeping its result or exception."""

    def __init__(self, target: Callable[[], Any], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self._target_fn()
        except BaseException as exc:  # reported by result()
            self.error = exc

    def result(self, timeout: float = 300.0) -> Any:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"{self.name} did not finish")
        if self.error is not None:
            raise self.error
        return self.value


# --------------------------------------------------------------------------- a contract-shaped stand-in


class ContractServer:
    """A minimal ``getInvoices.php`` that serves exactly the records it is given,
    whatever window is asked for (use it for one-day runs).

    For what the simulator cannot do: serve records that are bad (NaN, wrong day,
    wrong types), and hold a request until the test lets it go. Authentication is
    Fullbay's (key + SHA-1 token of key, today and the caller's IP); the envelope is
    the contract's; one page unless ``page_size`` says otherwise.
    """

    def __init__(self, records: Sequence[Any], api_key: str = KEY, page_size: int = 1000) -> None:
        self.records = list(records)
        self.api_key = api_key
        self.page_size = page_size
        self.hold = threading.Event()
        self.hold.set()  # clear() it to hold requests until set() again
        self.arrived = threading.Event()  # set when a request has come in
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests += 1
                server.arrived.set()
                server.hold.wait(300)
                body = json.dumps(server.answer(self.path, self.client_address[0])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((IP, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="contract-server")

    @property
    def url(self) -> str:
        return f"http://{IP}:{self._httpd.server_address[1]}/services"

    def answer(self, path: str, caller_ip: str) -> dict[str, Any]:
        params = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        expected = make_token(self.api_key, today_in("UTC"), caller_ip)
        if params.get("key") != self.api_key or params.get("token") != expected:
            return {"status": "FAIL", "message": "Invalid token or IP address not authorized"}
        page = int(params.get("page", "1"))
        selected = self.records  # whatever the window: a one-day run asks for one day
        total_pages = -(-len(selected) // self.page_size)
        chunk = selected[(page - 1) * self.page_size : page * self.page_size]
        return {
            "status": "SUCCESS",
            "startRecordNumber": (page - 1) * self.page_size + 1 if chunk else 0,
            "endRecordNumber": (page - 1) * self.page_size + len(chunk),
            "resultCount": len(chunk),
            "totalCount": len(selected),
            "pageSize": self.page_size,
            "currentPage": page,
            "totalPages": total_pages,
            "resultSet": chunk,
        }

    def __enter__(self) -> ContractServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------- the fault matrix


@dataclass(frozen=True)
class FaultCase:
    """One API fault, and what a correct pipeline does about it."""

    name: str
    description: str
    faults: tuple[str, ...] = ()
    sim: dict[str, Any] = field(default_factory=dict)  # simulator settings for the fault run
    client: dict[str, Any] = field(default_factory=dict)  # client tuning on top of FAST_CLIENT
    api_key: str = KEY
    public_ip: str = IP
    recovers: bool = True
    message: str = ""  # a regex the failure message must match (failing cases)
    prior_load: bool = True  # the day holds an earlier load before the fault run
    expected_requests: Callable[[int], int] | None = None  # pages of the day -> requests the run should make


FAULT_CASES: tuple[FaultCase, ...] = (
    FaultCase("429", "429 with Retry-After: 1", ("429",), client={"retry_after_cap": 30.0}),
    FaultCase("429-no-retry-after", "429 without Retry-After", ("429-no-retry-after",)),
    FaultCase(
        "429-huge",
        "429 with Retry-After: 86400, capped by retry_after_cap=0.2",
        ("429-huge",),
        client={"retry_after_cap": 0.2},
    ),
    FaultCase("500", "HTTP 500", ("500",)),
    FaultCase("502", "HTTP 502 (HTML page)", ("502",)),
    FaultCase("503", "HTTP 503 (HTML page)", ("503",)),
    FaultCase("504", "HTTP 504 (HTML page)", ("504",)),
    FaultCase("reset", "connection reset half-way through the body", ("reset",)),
    FaultCase(
        "timeout",
        "no answer within read_timeout=1 s (server takes 3 s; margin for a busy machine)",
        ("timeout",),
        sim={"slow_seconds": 3.0},
        client={"read_timeout": 1.0},
    ),
    FaultCase("malformed", "truncated JSON body", ("malformed",)),
    FaultCase("html", "HTML error page with HTTP 200", ("html",)),
    FaultCase("fail", "FAIL body ('Service temporarily unavailable') with HTTP 200", ("fail",)),
    FaultCase(
        "503-forever",
        "HTTP 503 on every request: client (2 attempts) and Dagster (1 step retry) give up",
        ("503",) * 4,
        client={"max_attempts": 2, "step_retries": 1},
        recovers=False,
        message=r"Gave up on getInvoices\.php .* after 2 attempts: .*HTTP 503",
        expected_requests=lambda pages: 4,
    ),
    FaultCase(
        "fail-auth",
        "FAIL 'Invalid token or IP address not authorized' (HTTP 200)",
        ("fail-auth",),
        recovers=False,
        message=r"FullbayAuthError: .*rejected the credentials",
        expected_requests=lambda pages: 1,
    ),
    FaultCase(
        "bad-key",
        "a wrong API key (FAIL 'Invalid API key')",
        api_key="wrong-key-00000000",
        recovers=False,
        message=r"FullbayAuthError: .*rejected the credentials \(Invalid API key\).*FULLBAY_API_KEY",
        expected_requests=lambda pages: 1,
    ),
    FaultCase(
        "ip-not-allowed",
        "a public IP that is not on the allow-list",
        public_ip="203.0.113.77",
        recovers=False,
        message=r"FullbayAuthError: .*203\.0\.113\.77.*allow-list",
        expected_requests=lambda pages: 1,
    ),
    FaultCase(
        "empty-day",
        "a day without invoices (invoices_per_day=0)",
        sim={"invoices_per_day": 0},
        prior_load=False,
        expected_requests=lambda pages: 1,
    ),
    FaultCase(
        "grow",
        "totalCount grows between page 1 and page 2: the window is fetched again",
        ("grow",),
        # page 1, then pages 2 and 3 fetched ahead (max_in_flight 2) before page 2 shows
        # the change, then the whole window again
        expected_requests=lambda pages: min(pages, 3) + pages,
    ),
    FaultCase(
        "shift",
        "the same invoice on two pages (one missed): the window is fetched again",
        ("shift",),
        expected_requests=lambda pages: 2 * pages,
    ),
)


@dataclass
class CaseResult:
    case: FaultCase
    outcome: RunOutcome
    requests: list[dict[str, Any]]
    before: dict[str, str]  # all columns, bookkeeping included, before the fault run
    after: dict[str, str]
    business: dict[str, str]  # after the run, bookkeeping excluded
    live_ids: list[str]
    quarantined: int
    bookkeeping: list[tuple[str, str | None]]  # (status, error_message) of the run's ingestion_metadata rows


def run_fault_case(case: FaultCase) -> CaseResult:
    """The day as loaded earlier (balances as of the next day), then a run of the same
    day, as of AS_OF, during which the simulator misbehaves as ``case`` says."""
    with temp_database(case.name.replace("-", "_")) as url, Simulator(sim_config()) as simulator:
        engine = migrated_engine(url)
        try:
            if case.prior_load:
                load_directly(engine, DAY, truth(DAY, DAY, as_of=EARLIER_AS_OF), datetime.now(UTC))
            before = checksums(engine, bookkeeping=True)
            if case.sim:
                simulator.configure(**case.sim)
            simulator.clear_requests()
            simulator.queue_faults(*case.faults)
            outcome = run_job(
                DAY,
                database_url=url,
                api_url=simulator.url,
                client=case.client,
                api_key=case.api_key,
                public_ip=case.public_ip,
            )
            # The simulator logs a request once answered: a timed-out one only after its delay.
            wait_until(lambda: sum(1 for r in simulator.requests() if r["fault"]) >= len(case.faults), "the log")
            return CaseResult(
                case=case,
                outcome=outcome,
                requests=simulator.requests(),
                before=before,
                after=checksums(engine, bookkeeping=True),
                business=checksums(engine),
                live_ids=ids(engine, work_orders),
                quarantined=row_count(engine, quarantine),
                bookkeeping=[(r["status"], r["error_message"]) for r in RunLog(engine, outcome.run_id).rows()],
            )
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- per-day digests


def day_digests(engine: Engine, day: date, *, bookkeeping: bool = True) -> dict[str, str]:
    """Digest of one day's rows in each table (lines and quarantine by their invoice's day)."""
    result: dict[str, str] = {}
    with engine.connect() as connection:
        for table in (raw_work_orders, work_orders):
            columns = [c for c in table.columns if bookkeeping or c.name not in BOOKKEEPING[table.name]]
            rows = connection.execute(
                select(*columns).where(table.c.invoice_date == day).order_by(table.c.fullbay_id)
            ).all()
            result[table.name] = _digest(rows)
        day_ids = select(work_orders.c.fullbay_id).where(work_orders.c.invoice_date == day)
        rows = connection.execute(
            select(work_order_lines)
            .where(work_order_lines.c.fullbay_id.in_(day_ids))
            .order_by(*work_order_lines.primary_key.columns)
        ).all()
        result[work_order_lines.name] = _digest(rows)
        columns = [c for c in quarantine.columns if bookkeeping or c.name not in BOOKKEEPING[quarantine.name]]
        rows = connection.execute(
            select(*columns)
            .where(quarantine.c.partition_key == day.isoformat())
            .order_by(*quarantine.primary_key.columns)
        ).all()
        result[quarantine.name] = _digest(rows)
    return result


def _digest(rows: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        plain = {k: (v if isinstance(v, (dict, list)) or v is None else str(v)) for k, v in row._mapping.items()}
        digest.update(json.dumps(plain, sort_keys=True, default=str).encode())
    return f"{len(rows)}:{digest.hexdigest()[:16]}"


# --------------------------------------------------------------------------- the soak


# Faults a later attempt can get past: every kind but the permanent "fail-auth"
# and the 86400-second Retry-After (capped, so it would only slow the soak down).
TRANSIENT_KINDS: tuple[str, ...] = (*DEFAULT_FAULT_KINDS, "429-no-retry-after", *sorted(DATA_FAULT_KINDS))
# Two windows are fetched at once; these make both windows' first page fail twice,
# so the client (2 attempts) gives up on both and Dagster must retry the step at least
# once, whatever the random draws do.
SOAK_OPENING_FAULTS: tuple[str, ...] = ("503", "503", "503", "503")
SOAK_CLIENT: dict[str, Any] = {
    "max_attempts": 2,  # low: the client gives up now and then and Dagster retries the step
    "max_in_flight": 2,
    "read_timeout": 0.25,
    "retry_after_cap": 0.05,
    "step_retries": 25,
    "step_retry_wait": 0.05,
}


@dataclass(frozen=True)
class SoakSpec:
    days: int = 30
    per_day: int = 3
    page_size: int = 5
    fault_rate: float = 0.1
    fault_seed: int = 20250312
    first: date = date(2025, 2, 1)

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)

    @classmethod
    def from_env(cls, prefix: str = "FULLBAY_SOAK_") -> SoakSpec:
        """FULLBAY_SOAK_DAYS, _INVOICES_PER_DAY, _PAGE_SIZE, _FAULT_RATE, _FAULT_SEED."""
        base = cls()
        env = os.environ
        return cls(
            days=int(env.get(f"{prefix}DAYS", base.days)),
            per_day=int(env.get(f"{prefix}INVOICES_PER_DAY", base.per_day)),
            page_size=int(env.get(f"{prefix}PAGE_SIZE", base.page_size)),
            fault_rate=float(env.get(f"{prefix}FAULT_RATE", base.fault_rate)),
            fault_seed=int(env.get(f"{prefix}FAULT_SEED", base.fault_seed)),
        )


@dataclass
class SoakResult:
    spec: SoakSpec
    outcome: RunOutcome
    requests: int
    faults: dict[str, int]
    expected_ids: list[str]  # the simulator's ground truth
    raw_ids: list[str]  # live rows in fullbay_raw_work_orders after the run
    work_order_ids: list[str]  # live rows in fullbay_work_orders after the run
    lines: int
    checksums: dict[str, str]  # after the faulted run, bookkeeping excluded
    clean_checksums: dict[str, str]  # one clean run of the same range in another database
    clean_requests: int

    @property
    def missing(self) -> int:
        return len(set(self.expected_ids) - set(self.work_order_ids)) + len(set(self.expected_ids) - set(self.raw_ids))

    @property
    def extra(self) -> int:
        return len(set(self.work_order_ids) - set(self.expected_ids)) + len(set(self.raw_ids) - set(self.expected_ids))

    @property
    def duplicates(self) -> int:
        return len(self.work_order_ids) - len(set(self.work_order_ids)) + len(self.raw_ids) - len(set(self.raw_ids))

    @property
    def checksums_equal(self) -> bool:
        return self.checksums == self.clean_checksums


def run_soak(spec: SoakSpec) -> SoakResult:
    """A backfill of ``spec.days`` days as one run, ~``fault_rate`` of requests faulted."""
    settings = {"invoices_per_day": spec.per_day, "page_size": spec.page_size, "slow_seconds": 0.5}
    with temp_database("soak_clean") as clean_url, Simulator(sim_config(**settings)) as simulator:
        clean = run_job(spec.first, spec.last, database_url=clean_url, api_url=simulator.url, client=SOAK_CLIENT)
        assert clean.success, f"the clean soak run failed: {clean.error}"
        clean_requests = len(simulator.requests())
        engine = make_engine(clean_url)
        clean_checksums = checksums(engine)
        engine.dispose()
    faulty = {**settings, "fault_rate": spec.fault_rate, "fault_kinds": TRANSIENT_KINDS, "fault_seed": spec.fault_seed}
    with temp_database("soak") as url, Simulator(sim_config(**faulty)) as simulator:
        simulator.queue_faults(*SOAK_OPENING_FAULTS)
        outcome = run_job(spec.first, spec.last, database_url=url, api_url=simulator.url, client=SOAK_CLIENT)
        requests = simulator.requests()
        engine = make_engine(url)
        try:
            return SoakResult(
                spec=spec,
                outcome=outcome,
                requests=len(requests),
                faults=fault_counts(requests),
                expected_ids=[r["primaryKey"] for r in truth(spec.first, spec.last, spec.per_day)],
                raw_ids=ids(engine, raw_work_orders),
                work_order_ids=ids(engine, work_orders),
                lines=row_count(engine, work_order_lines),
                checksums=checksums(engine),
                clean_checksums=clean_checksums,
                clean_requests=clean_requests,
            )
        finally:
            engine.dispose()
