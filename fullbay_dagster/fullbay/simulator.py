"""A local HTTP stand-in for Fullbay's ``getInvoices.php``.

Fullbay has no sandbox, so the client, the Dagster assets and the demo are
exercised against this server instead. It reproduces what the contract
(``/work/shared/fullbay-api.md``) says about the real service: key + SHA-1 token
auth bound to the caller's IP, the 7-day window, paging, FAIL bodies served with
HTTP 200, and the failure modes clients have had to guard against (429s, 5xx
pages, truncated bodies, resets, slow answers), which can be injected randomly or
scripted per request.

Usage::

    with Simulator(SimulatorConfig(seed=3)) as sim:
        client = FullbayClient(base_url=sim.url, ...)

or out of process: ``python -m fullbay_dagster.fullbay.simulator --port 8765``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from fullbay_dagster.fullbay.auth import make_token, today_in
from fullbay_dagster.fullbay.synthetic import MAX_PER_DAY, DayPlan, plan_day, with_type_chaos
from fullbay_dagster.fullbay.synthetic_endpoints import GENERATORS

__all__ = [
    "ALL_FAULT_KINDS",
    "DEFAULT_FAULT_KINDS",
    "Simulator",
    "SimulatorConfig",
    "main",
]

logger = logging.getLogger(__name__)

DEFAULT_FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "timeout",
    "malformed",
    "html",
    "fail",
)
# "shift" and "grow" answer with data that moved under the pager, as a live system's
# does when invoices are added during paging: "shift" repeats the page's first record
# in place of its last (one duplicate, one missing, totals unchanged); "grow" reports
# one more record in totalCount than the pages hold.
DATA_FAULT_KINDS: frozenset[str] = frozenset({"shift", "grow"})
ALL_FAULT_KINDS: frozenset[str] = (
    frozenset(DEFAULT_FAULT_KINDS) | {"429-no-retry-after", "429-huge", "fail-auth"} | DATA_FAULT_KINDS
)

MSG_INVALID_KEY = "Invalid API key"
MSG_INVALID_TOKEN = "Invalid token or IP address not authorized"  # noqa: S105 - an error message
MSG_INVALID_DATE = "Invalid date"
MSG_INVALID_RANGE = "Invalid date range"
MSG_RANGE_TOO_LONG = "Date range cannot exceed 7 days"
MSG_INVALID_PAGE = "Invalid page"
MSG_UNAVAILABLE = "Service temporarily unavailable"
MSG_ENDPOINT_REFUSED = "This API key is not authorized for this endpoint"
INVOICES_PHP = "getInvoices.php"
#: Every date-windowed endpoint the simulator serves.
ENDPOINT_SCRIPTS = (INVOICES_PHP, *GENERATORS)

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECRET_RE = re.compile(r"(?i)\b(key|token)=[^&\s\"']*")


@dataclass
class SimulatorConfig:
    api_key: str = "demo-key"
    seed: int = 1
    invoices_per_day: int = 40
    page_size: int = 50
    #: IP the token must be computed with; None = the caller's address as the server sees it.
    expected_ip: str | None = None
    token_timezone: str = "UTC"  # noqa: S105 - a timezone name
    #: The simulated "today": drives balances, voids, and which days have invoices yet. None = today (UTC).
    as_of: date | None = None
    void_rate: float = 0.0
    latency: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = DEFAULT_FAULT_KINDS
    fault_seed: int = 0
    retry_after: int = 1
    slow_seconds: float = 5.0
    max_window_days: int = 7
    shops: int = 3
    #: Entries in each LRU (day plans, rendered pages); lower it for very large days.
    cache_size: int = 64
    #: Type chaos: each non-identity field, at any depth, takes another JSON type with
    #: this probability (reproducibly per seed and invoice). 0 = off.
    type_chaos: float = 0.0
    #: How an empty window is answered: "pages0" (totalPages 0), "pages1" (totalPages 1)
    #: or "absent" (totalPages 1 and no resultSet at all).
    empty_shape: str = "pages0"
    #: Every page after the first repeats the previous page's last invoice, on every
    #: fetch; totalCount counts the repeats (a paging quirk seen in offset APIs).
    page_repeats: bool = False
    #: Endpoints (PHP names) that answer FAIL for this key, as some accounts see.
    refused_endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.fault_kinds) - ALL_FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if self.page_size < 1 or self.max_window_days < 1 or self.cache_size < 1:
            raise ValueError("page_size, max_window_days and cache_size must be >= 1")
        if not 0 <= self.invoices_per_day <= MAX_PER_DAY:
            raise ValueError(f"invoices_per_day must be within 0..{MAX_PER_DAY}")
        if not 0 <= self.type_chaos <= 1:
            raise ValueError("type_chaos must be within 0..1")
        if self.empty_shape not in ("pages0", "pages1", "absent"):
            raise ValueError("empty_shape must be pages0, pages1 or absent")
        if self.page_repeats and self.page_size < 2:
            raise ValueError("page_repeats needs page_size >= 2")


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _LRU(Generic[_K, _V]):
    """Thread-safe LRU whose size can change at runtime (functools.lru_cache's cannot)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > max(1, self.maxsize):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json_answer(payload: Any) -> _Answer:
    return _Answer(200, json.dumps(payload, separators=(",", ":")).encode())


def _moved_data(answer: _Answer, fault: str, page_size: int) -> _Answer:
    body = json.loads(answer.body)
    if body.get("status") != "SUCCESS" or not body["resultSet"]:
        return answer
    if fault == "shift":
        body["resultSet"] = [body["resultSet"][0], *body["resultSet"][:-1]]
    else:
        body["totalCount"] += 1
        body["totalPages"] = -(-body["totalCount"] // page_size)
    return _json_answer(body)


def _fail(message: str) -> _Answer:
    return _json_answer({"status": "FAIL", "message": message})


def _html(title: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>The server encountered an error.</p></body></html>"
    ).encode()


def _parse_day(text: str | None) -> date | None:
    if not text or not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _redact(text: str) -> str:
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer (timeouts, resets) are expected here, not errors.
        logger.debug("simulator connection error from %s: %r", client_address[0], sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- logging: never let key/token (query string) reach a log line
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if isinstance(code, int) else code
        logger.debug("%s %s %s", self.command, urlsplit(self.path).path, status)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulator: %s", _redact(format % args))

    # -- routing
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        sim = self.server.simulator
        script = path.rsplit("/", 1)[-1]
        if script in ENDPOINT_SCRIPTS:
            sim._handle_endpoint(self, script)
        elif path.rstrip("/").endswith("/_sim/requests"):
            self.send_answer(_json_answer(sim.requests()))
        elif path.rstrip("/").endswith("/_sim/config"):
            self.send_answer(_json_answer(sim.config_dict()))
        else:
            self.send_answer(_Answer(404, b'{"error":"not found"}'))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        sim = self.server.simulator
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            payload = json.loads(raw) if raw.strip() else {}
            if not isinstance(payload, dict):
                raise TypeError("body must be a JSON object")
            if path.endswith("/_sim/faults"):
                kinds = payload.get("kinds", [])
                if isinstance(kinds, str) or not isinstance(kinds, list):
                    raise ValueError("kinds must be a list")
                sim.queue_faults(*kinds)
                answer = _json_answer({"queued": len(kinds)})
            elif path.endswith("/_sim/config"):
                sim.configure(**payload)
                answer = _json_answer(sim.config_dict())
            elif path.endswith("/_sim/reset"):
                sim.clear_requests()
                sim.clear_faults()
                answer = _json_answer({"reset": True})
            else:
                answer = _Answer(404, b'{"error":"not found"}')
        except (ValueError, TypeError) as exc:
            answer = _Answer(400, json.dumps({"error": str(exc)}).encode())
        self.send_answer(answer)

    # -- writing
    def send_answer(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def send_reset(self, answer: _Answer) -> None:
        """Promise the full body, send half, then abort with RST, like a dropped upstream."""
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body[: len(answer.body) // 2])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # really closes once rfile/wfile are closed by finish()


class Simulator:
    """The simulated Fullbay service; thread-safe, mutable at runtime for tests and demos."""

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._config = config or SimulatorConfig()
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._faults: deque[str | None] = deque()
        self._fault_rng = random.Random(self._config.fault_seed)
        self._plans: _LRU[tuple[Any, ...], DayPlan] = _LRU(self._config.cache_size)
        self._pages: _LRU[tuple[Any, ...], _Answer] = _LRU(self._config.cache_size)
        self._records: _LRU[tuple[Any, ...], list[dict[str, Any]]] = _LRU(self._config.cache_size)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, host: str | None = None, port: int | None = None) -> Self:
        if self._server is not None:
            return self
        self._host = host if host is not None else self._host
        self._server = _Server((self._host, self._port if port is None else port), self)
        self._port = self._server.server_address[1]
        # A short poll interval keeps stop() quick (serve_forever's default is 0.5 s).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fullbay-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return self._host

    @property
    def base(self) -> str:
        """Server root, where the ``/_sim/...`` admin endpoints live."""
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The base URL a Fullbay client is configured with (``.../services``)."""
        return f"{self.base}/services"

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> SimulatorConfig:
        with self._lock:
            return self._config

    def config_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self.config)
        values["as_of"] = values["as_of"].isoformat() if values["as_of"] else None
        values["fault_kinds"] = list(values["fault_kinds"])
        values.pop("api_key")
        return values

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings of a running simulator (also ``POST /_sim/config``)."""
        names = {f.name for f in dataclasses.fields(SimulatorConfig)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if "as_of" in changes and isinstance(changes["as_of"], str):
            changes["as_of"] = date.fromisoformat(changes["as_of"])
        if "fault_kinds" in changes:
            changes["fault_kinds"] = tuple(changes["fault_kinds"])
        if "refused_endpoints" in changes:
            changes["refused_endpoints"] = tuple(changes["refused_endpoints"])
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)
            if "fault_seed" in changes:
                self._fault_rng = random.Random(self._config.fault_seed)
            self._plans.maxsize = self._pages.maxsize = self._records.maxsize = self._config.cache_size
            return self._config

    def set_as_of(self, as_of: date | None) -> None:
        self.configure(as_of=as_of)

    # ------------------------------------------------------------------ faults and log
    def queue_faults(self, *kinds: str | None) -> None:
        """Make the next ``len(kinds)`` getInvoices requests fail this way, in order
        (``None``: that request is served normally)."""
        unknown = {kind for kind in kinds if kind is not None} - ALL_FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        with self._lock:
            self._faults.extend(kinds)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _next_fault(self, config: SimulatorConfig) -> str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._fault_rng.random() < config.fault_rate and config.fault_kinds:
                return self._fault_rng.choice(config.fault_kinds)
            return None

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    # ------------------------------------------------------------------ the endpoint
    def _handle_endpoint(self, handler: _Handler, script: str) -> None:
        config = self.config
        params = {
            name: values[0] for name, values in parse_qs(urlsplit(handler.path).query, keep_blank_values=True).items()
        }
        client_ip = handler.client_address[0]
        received_at = time.time()
        fault = self._next_fault(config)
        if config.latency > 0:
            time.sleep(config.latency)
        if fault == "timeout":
            time.sleep(config.slow_seconds)

        answer = self._fault_answer(fault, config)
        if answer is None:
            answer = self._answer(params, client_ip, config, script)
            if fault in DATA_FAULT_KINDS:
                answer = _moved_data(answer, fault, config.page_size)

        page: Any = params.get("page") or 1
        with contextlib.suppress(ValueError):
            page = int(page)
        self._record(
            {
                "endpoint": script,
                "startDate": params.get("startDate"),
                "endDate": params.get("endDate"),
                "page": page,
                "fault": fault,
                "status": answer.status,
                "ip": client_ip,
                # wall-clock times, so tests can see whether two runs called at once
                "received_at": received_at,
                "answered_at": time.time(),
            }
        )
        try:
            if fault == "reset":
                handler.send_reset(answer)
            elif fault == "malformed":
                handler.send_answer(dataclasses.replace(answer, body=answer.body[: max(1, len(answer.body) // 2)]))
            else:
                handler.send_answer(answer)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    @staticmethod
    def _fault_answer(fault: str | None, config: SimulatorConfig) -> _Answer | None:
        if fault in ("429", "429-no-retry-after", "429-huge"):
            headers = {"429": {"Retry-After": str(config.retry_after)}, "429-huge": {"Retry-After": "86400"}}.get(
                fault, {}
            )
            return _Answer(429, _html("429 Too Many Requests"), "text/html; charset=UTF-8", headers)
        if fault == "500":
            return _Answer(500, b"Internal Server Error", "text/plain; charset=UTF-8")
        if fault in ("502", "503", "504"):
            title = {"502": "502 Bad Gateway", "503": "503 Service Unavailable", "504": "504 Gateway Time-out"}[fault]
            return _Answer(int(fault), _html(title), "text/html; charset=UTF-8")
        if fault == "html":
            return _Answer(200, _html("Fullbay - Error"), "text/html; charset=UTF-8")
        if fault == "fail":
            return _fail(MSG_UNAVAILABLE)
        if fault == "fail-auth":
            return _fail(MSG_INVALID_TOKEN)
        return None  # no fault, or one that alters delivery of the normal answer

    def _answer(self, params: dict[str, str], client_ip: str, config: SimulatorConfig, script: str) -> _Answer:
        key = params.get("key", "")
        if not key or key != config.api_key:
            return _fail(MSG_INVALID_KEY)
        expected = make_token(key, today_in(config.token_timezone), config.expected_ip or client_ip)
        if params.get("token", "") != expected:
            return _fail(MSG_INVALID_TOKEN)
        if script in config.refused_endpoints:
            return _fail(MSG_ENDPOINT_REFUSED)
        start, end = _parse_day(params.get("startDate")), _parse_day(params.get("endDate"))
        if start is None or end is None:
            return _fail(MSG_INVALID_DATE)
        if end < start:
            return _fail(MSG_INVALID_RANGE)
        if (end - start).days + 1 > config.max_window_days:
            return _fail(MSG_RANGE_TOO_LONG)
        raw_page = params.get("page", "") or "1"
        if not (raw_page.isascii() and raw_page.isdigit()) or int(raw_page) < 1:
            return _fail(MSG_INVALID_PAGE)
        as_of = config.as_of or datetime.now(UTC).date()
        return self._page(start, end, int(raw_page), as_of, config, script)

    def _plan(self, day: date, config: SimulatorConfig) -> DayPlan:
        key = (config.seed, day, config.invoices_per_day, config.void_rate, config.shops)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_day(config.seed, day, config.invoices_per_day, void_rate=config.void_rate, shops=config.shops)
            self._plans.put(key, plan)
        return plan

    def _page(
        self, start: date, end: date, page: int, as_of: date, config: SimulatorConfig, script: str = INVOICES_PHP
    ) -> _Answer:
        if script != INVOICES_PHP:
            return self._other_page(start, end, page, as_of, config, script)
        cache_key = (
            config.seed, config.invoices_per_day, config.void_rate, config.shops,
            config.page_size, start, end, page, as_of, config.type_chaos, config.empty_shape, config.page_repeats,
        )  # fmt: skip
        cached = self._pages.get(cache_key)
        if cached is not None:
            return cached
        # Days after as_of have not happened yet, so they hold no invoices.
        days = [start + timedelta(days=n) for n in range((min(end, as_of) - start).days + 1)]
        per_day = [(plan, plan.indexes(as_of)) for plan in (self._plan(day, config) for day in days)]
        distinct = sum(len(indexes) for _, indexes in per_day)
        total = _served(distinct, config.page_size) if config.page_repeats else distinct
        total_pages = -(-total // config.page_size)
        if total_pages and page > total_pages:
            return _fail(MSG_INVALID_PAGE)
        if not total:
            return _json_answer(_empty_answer(config, page))
        first = (page - 1) * config.page_size
        wanted = range(first, min(first + config.page_size, total))
        # With page_repeats, served position i shows distinct invoice i - i // page_size.
        positions = [n - n // config.page_size if config.page_repeats else n for n in wanted]
        records: list[dict[str, Any]] = []
        offset = 0
        for plan, indexes in per_day:
            records.extend(
                plan.invoice(indexes[n - offset], as_of) for n in positions if offset <= n < offset + len(indexes)
            )
            offset += len(indexes)
        if config.type_chaos:
            records = [with_type_chaos(record, config.type_chaos, config.seed) for record in records]
        answer = _json_answer(
            {
                "status": "SUCCESS",
                "startRecordNumber": first + 1 if records else 0,
                "endRecordNumber": first + len(records) if records else 0,
                "resultCount": len(records),
                "totalCount": total,
                "pageSize": config.page_size,
                "currentPage": page,
                "totalPages": total_pages,
                "resultSet": records,
            }
        )
        self._pages.put(cache_key, answer)
        return answer

    def _day_records(self, script: str, day: date, as_of: date, config: SimulatorConfig) -> list[dict[str, Any]]:
        key = (script, config.seed, day, config.invoices_per_day, config.void_rate, config.shops, as_of)
        records = self._records.get(key)
        if records is None:
            generate, _ = GENERATORS[script]
            records = generate(config.seed, day, config.invoices_per_day, as_of, config.shops, config.void_rate)
            self._records.put(key, records)
        return records

    def _other_page(
        self, start: date, end: date, page: int, as_of: date, config: SimulatorConfig, script: str
    ) -> _Answer:
        """A page of another endpoint: same envelope, paging and chaos as invoices."""
        days = [start + timedelta(days=n) for n in range((min(end, as_of) - start).days + 1)]
        records = [record for day in days for record in self._day_records(script, day, as_of, config)]
        total = len(records)
        total_pages = -(-total // config.page_size)
        if total_pages and page > total_pages:
            return _fail(MSG_INVALID_PAGE)
        if not total:
            return _json_answer(_empty_answer(config, page))
        first = (page - 1) * config.page_size
        served = records[first : first + config.page_size]
        if config.type_chaos:
            identity = frozenset({"primaryKey", GENERATORS[script][1]})
            served = [with_type_chaos(r, config.type_chaos, config.seed, identity) for r in served]
        return _json_answer(
            {
                "status": "SUCCESS",
                "startRecordNumber": first + 1,
                "endRecordNumber": first + len(served),
                "resultCount": len(served),
                "totalCount": total,
                "pageSize": config.page_size,
                "currentPage": page,
                "totalPages": total_pages,
                "resultSet": served,
            }
        )


def _served(distinct: int, page_size: int) -> int:
    """Records served when each page after the first repeats one: distinct + pages - 1."""
    if not distinct:
        return 0
    pages = -(-distinct // page_size)
    while -(-(distinct + pages - 1) // page_size) != pages:
        pages += 1
    return distinct + pages - 1


def _empty_answer(config: SimulatorConfig, page: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "SUCCESS",
        "startRecordNumber": 0,
        "endRecordNumber": 0,
        "resultCount": 0,
        "totalCount": 0,
        "pageSize": config.page_size,
        "currentPage": page,
        "totalPages": 0 if config.empty_shape == "pages0" else 1,
        "resultSet": [],
    }
    if config.empty_shape == "absent":
        del body["resultSet"]
    return body


# ---------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="fullbay-simulator", description="Serve a simulated Fullbay getInvoices.php.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--key", default=defaults.api_key, help="API key clients must send")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--invoices-per-day", type=int, default=defaults.invoices_per_day)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument(
        "--expected-ip", default=defaults.expected_ip, help="IP the token is bound to (default: caller's)"
    )
    parser.add_argument("--token-timezone", default=defaults.token_timezone)
    parser.add_argument("--as-of", type=date.fromisoformat, default=defaults.as_of, help="simulated today, YYYY-MM-DD")
    parser.add_argument("--void-rate", type=float, default=defaults.void_rate)
    parser.add_argument("--latency", type=float, default=defaults.latency)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--fault-kinds", default=",".join(defaults.fault_kinds), help="comma-separated")
    parser.add_argument("--fault-seed", type=int, default=defaults.fault_seed)
    parser.add_argument("--retry-after", type=int, default=defaults.retry_after)
    parser.add_argument("--slow-seconds", type=float, default=defaults.slow_seconds)
    parser.add_argument("--max-window-days", type=int, default=defaults.max_window_days)
    parser.add_argument("--cache-size", type=int, default=defaults.cache_size)
    parser.add_argument(
        "--type-chaos",
        type=float,
        default=defaults.type_chaos,
        help="probability that each non-identity field takes another JSON type (0 = off)",
    )
    parser.add_argument("--empty-shape", choices=("pages0", "pages1", "absent"), default=defaults.empty_shape)
    parser.add_argument(
        "--page-repeats", action="store_true", help="repeat the previous page's last invoice on every later page"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kinds: Iterable[str] = (k.strip() for k in args.fault_kinds.split(",") if k.strip())
    config = SimulatorConfig(
        api_key=args.key,
        seed=args.seed,
        invoices_per_day=args.invoices_per_day,
        page_size=args.page_size,
        expected_ip=args.expected_ip,
        token_timezone=args.token_timezone,
        as_of=args.as_of,
        void_rate=args.void_rate,
        latency=args.latency,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(kinds),
        fault_seed=args.fault_seed,
        retry_after=args.retry_after,
        slow_seconds=args.slow_seconds,
        max_window_days=args.max_window_days,
        cache_size=args.cache_size,
        type_chaos=args.type_chaos,
        empty_shape=args.empty_shape,
        page_repeats=args.page_repeats,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with Simulator(config, host=args.host, port=args.port) as sim:
        print(f"Fullbay simulator listening on {sim.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
