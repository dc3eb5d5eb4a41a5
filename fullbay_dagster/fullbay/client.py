"""HTTP client for Fullbay's ``getInvoices.php``.

It honours the contract in ``shared/fullbay-api.md``: SHA-1 day tokens, windows of
at most seven days, paging until ``totalPages``, and a body that must be checked on
every response whatever the HTTP status. Records are yielded page by page so memory
does not grow with the size of a day.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from urllib3.exceptions import NewConnectionError

from fullbay_dagster.fullbay import auth
from fullbay_dagster.fullbay.auth import Dating, make_token, today_in
from fullbay_dagster.fullbay.errors import (
    FullbayAuthError,
    FullbayEndpointError,
    FullbayError,
    FullbayGaveUpError,
    FullbayPermanentError,
    FullbayRepeatsError,
    FullbayTransientError,
)
from fullbay_dagster.fullbay.jsonio import LenientBody, parse_json
from fullbay_dagster.fullbay.pacing import AdaptivePacer
from fullbay_dagster.fullbay.redaction import install_urllib3_redaction, redact
from fullbay_dagster.fullbay.windows import MAX_WINDOW_DAYS, date_windows

DEFAULT_BASE_URL = "https://app.fullbay.com/services"
DEFAULT_IP_ECHO_URL = "https://checkip.amazonaws.com"
INVOICES_ENDPOINT = "getInvoices.php"
# FAIL messages that no retry can fix. Fullbay's wording is undocumented, so the
# patterns are configuration (FULLBAY_AUTH_FAIL_PATTERN, FULLBAY_REQUEST_FAIL_PATTERN);
# these defaults match the phrasing public clients report.
DEFAULT_AUTH_FAIL_PATTERN = r"(?i)\bkey\b|token|\bip\b|authori[sz]|allow|permission|denied"
DEFAULT_REQUEST_FAIL_PATTERN = r"(?i)date|range|exceed|page|parameter"
# A call this close to midnight (FULLBAY_TOKEN_TIMEZONE) that Fullbay rejects is retried
# once with the token of the day on the other side: it was dated before midnight and
# checked after, or Fullbay's clock differs from ours by up to this much.
MIDNIGHT_MARGIN = timedelta(minutes=5)
_ENVELOPE_INTS = (
    "resultCount",
    "totalCount",
    "currentPage",
    "totalPages",
)


class LogSink(Protocol):
    def info(self, msg: str) -> Any: ...
    def warning(self, msg: str) -> Any: ...
    def debug(self, msg: str) -> Any: ...


@dataclass(frozen=True)
class FullbayClientConfig:
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    public_ip: str | None = None
    ip_echo_url: str = DEFAULT_IP_ECHO_URL
    token_timezone: str = "UTC"  # noqa: S105 (a timezone, not a secret)
    connect_timeout: float = 10.0
    # One real client waits 1000 s: a busy day can take Fullbay many minutes.
    read_timeout: float = 1000.0
    max_attempts: int = 6
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_after_cap: float = 120.0
    total_deadline: float = 3600.0
    # Pacing (see pacing.py): no gap between calls until Fullbay pushes back, then a
    # gap that doubles up to max_interval and halves again with each prompt answer.
    min_interval: float = 0.0  # the floor: seconds between call starts, even when all is well
    max_interval: float = 30.0  # the ceiling of the gap while backing off
    max_in_flight: int = 2  # calls in flight at once, at most: pages of a window ahead, windows side by side
    slow_factor: float = 4.0  # an answer this many times slower than usual counts as pushback
    window_days: int = MAX_WINDOW_DAYS
    # Pauses before fetching an inconsistent window again; after the last, the run
    # fails (about a minute in all, rather than minutes of step retries).
    window_refetch_waits: tuple[float, ...] = (2.0, 10.0, 30.0)
    auth_fail_pattern: str = DEFAULT_AUTH_FAIL_PATTERN
    request_fail_pattern: str = DEFAULT_REQUEST_FAIL_PATTERN
    # Off by default: a FAIL read as "nothing that day" would mark the day's rows deleted.
    empty_fail_pattern: str = ""

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("The Fullbay API key is empty: set FULLBAY_API_KEY (or the secret).")
        if not re.match(r"^https?://", self.base_url):
            raise ValueError(f"FULLBAY_API_BASE_URL must start with http:// or https://, got {self.base_url!r}")
        if self.public_ip is not None:
            _validate_ip(self.public_ip, "FULLBAY_PUBLIC_IP")
        for name in ("connect_timeout", "read_timeout", "total_deadline", "backoff_initial", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} (FULLBAY_{name.upper()}) must be positive, got {getattr(self, name)}")
        for name in ("max_attempts", "max_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} (FULLBAY_{name.upper()}) must be at least 1, got {getattr(self, name)}")
        if self.min_interval < 0:
            raise ValueError(f"min_interval (FULLBAY_MIN_INTERVAL) must be >= 0, got {self.min_interval}")
        if self.max_interval < self.min_interval:
            raise ValueError(
                f"max_interval (FULLBAY_MAX_INTERVAL, {self.max_interval:g}) must be at least min_interval "
                f"(FULLBAY_MIN_INTERVAL, {self.min_interval:g}): raise the one or lower the other"
            )
        if self.slow_factor <= 1:
            raise ValueError(f"slow_factor (FULLBAY_SLOW_FACTOR) must be more than 1, got {self.slow_factor}")
        try:
            ZoneInfo(self.token_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"FULLBAY_TOKEN_TIMEZONE {self.token_timezone!r} is not an IANA timezone (e.g. UTC, America/Chicago)"
            ) from None
        for name in ("auth_fail_pattern", "request_fail_pattern", "empty_fail_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ValueError(f"FULLBAY_{name.upper()} is not a regular expression: {exc}") from None
        if not 1 <= self.window_days <= MAX_WINDOW_DAYS:
            raise ValueError(f"window_days must be between 1 and {MAX_WINDOW_DAYS}, got {self.window_days}")


@dataclass
class ClientStats:
    """Counters shown in run metadata; safe to update from several threads."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    records: int = 0
    repeats: int = 0  # invoices a window served twice, accepted because stable across fetches
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "retries": self.retries,
            "records": self.records,
            "repeats": self.repeats,
        }


@dataclass(frozen=True)
class Page:
    start: date
    end: date
    number: int
    total_pages: int
    total_count: int
    records: list[dict[str, Any]]
    # False when the body held what strict JSON cannot (NaN, Infinity, huge integers,
    # lone surrogates): writers must then use the standard library to keep it as is.
    strict: bool = True


def _validate_ip(value: str, source: str) -> str:
    """Fullbay's token takes the caller's public IPv4 address; an IPv6 one cannot match."""
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise FullbayPermanentError(
            f"{source} is not an IPv4 address (Fullbay's token uses the public IPv4 address it sees): "
            f"{value.strip()[:60]!r}"
        ) from None


def _fail_envelope(content: bytes) -> dict[str, Any] | None:
    """The body of an error status when it is Fullbay's FAIL envelope."""
    try:
        body = parse_json(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("status") == "FAIL" else None


def _empty_page(page: int) -> dict[str, Any]:
    """The envelope of a window with no records, as ``_check_envelope`` leaves one."""
    return {
        "status": "SUCCESS",
        "resultSet": [],
        "resultCount": 0,
        "totalCount": 0,
        "totalPages": 0,
        "currentPage": page,
    }


def _is_empty_window(body: dict[str, Any]) -> bool:
    try:
        return (
            int(body.get("totalCount", -1)) == 0
            and int(body.get("totalPages", 0)) in (0, 1)
            and body.get("resultSet") in (None, [])
        )
    except (TypeError, ValueError):
        return False


def _page_digest(records: list[Any], key_field: str = "primaryKey") -> str:
    """A fingerprint of a page: which records, in which order. Cheap (keys only),
    and what tells a stable repeat from data moving under the pager."""
    keys = [str(r.get(key_field)) if isinstance(r, dict) else "" for r in records]
    return hashlib.sha256("\x1f".join(keys).encode()).hexdigest()


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(tz=None).astimezone()).total_seconds())
    except (TypeError, ValueError):
        return None


class Dated(NamedTuple):
    """One call's credentials, read together: its key and token, and how it was dated."""

    dating: Dating
    key: str
    token: str


@dataclass
class AuthRecovery:
    """What one page has tried since Fullbay refused its credentials."""

    day: date | None = None  # the token day to send instead of ours
    refused_days: set[tuple[date, int]] = field(default_factory=set)  # (day, credentials generation)
    key: bool = False  # read the key again
    ip: bool = False  # detected the IP again
    elsewhere: bool = False  # used credentials another page renewed


class FullbayClient:
    """One client per run: it caches the day's token and the detected IP, and
    enforces the pacing (minimum interval, calls in flight) across threads."""

    def __init__(
        self,
        config: FullbayClientConfig,
        logger: LogSink | None = None,
        session: requests.Session | None = None,
        refresh_api_key: Callable[[], str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``refresh_api_key`` re-reads a key that may have been rotated (Secrets
        Manager); it is called once when Fullbay rejects the current one. ``clock``
        (timezone-aware now) dates the token; tests set it near midnight."""
        install_urllib3_redaction()
        self.config = config
        self._api_key = config.api_key
        self._refresh_api_key = refresh_api_key
        self.stats = ClientStats()
        self.log: LogSink = logger or logging.getLogger(__name__)
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(config.max_in_flight, 2), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self.pacer = AdaptivePacer(
            floor=config.min_interval,
            ceiling=config.max_interval,
            max_in_flight=config.max_in_flight,
            slow_factor=config.slow_factor,
            retry_after_cap=config.retry_after_cap,
        )
        self._ip_lock = threading.Lock()
        self._ip: str | None = _validate_ip(config.public_ip, "FULLBAY_PUBLIC_IP") if config.public_ip else None
        self._ip_detected = False
        self._token: tuple[date, str, str, str] | None = None  # (day, ip, key, token)
        self._clock = clock
        # Near midnight Fullbay's clock may already (or still) be on the other day: the
        # token day it last accepted instead of ours, while the same midnight's margin lasts.
        self._pinned_day: tuple[date, tuple[date, date]] | None = None
        # The latest day Fullbay has accepted near midnight: an answer older than that
        # one never moves the pin back.
        self._accepted_day: tuple[date, tuple[date, date]] | None = None
        self._pin_lock = threading.Lock()
        # Counts renewals of the key or IP, so that a page refused with credentials that
        # another page has renewed since retries with the new ones instead of renewing again.
        self._credentials = 0
        self._credentials_lock = threading.Lock()
        self._auth_fail = re.compile(config.auth_fail_pattern)
        self._request_fail = re.compile(config.request_fail_pattern)
        self._empty_fail = re.compile(config.empty_fail_pattern) if config.empty_fail_pattern else None
        # Set by the first answer shaped like Fullbay's; Fullbay's own address counts as
        # reached: a maintenance page or an outage there is not a wrong FULLBAY_API_BASE_URL.
        self._reached_api = urlsplit(config.base_url).hostname == urlsplit(DEFAULT_BASE_URL).hostname
        self._endpoint_strikes = 0

    # -- authentication -------------------------------------------------------

    def public_ip(self) -> str:
        with self._ip_lock:
            if self._ip is None:
                self._ip = self._detect_ip()
                self._ip_detected = True
            return self._ip

    def _detect_ip(self) -> str:
        url = self.config.ip_echo_url
        try:
            response = self._session.get(url, timeout=(self.config.connect_timeout, 30))
            response.raise_for_status()
        except requests.RequestException as exc:
            raise FullbayPermanentError(
                f"Could not detect this machine's public IP from {url} ({type(exc).__name__}); "
                "set FULLBAY_PUBLIC_IP to the address Fullbay has on its allow-list."
            ) from None
        # Decode as ASCII ourselves: without a charset, requests guesses (once, UTF-16).
        return _validate_ip(response.content.decode("ascii", "replace"), f"the IP echo service {url}")

    def token(self) -> str:
        return self._dated_token().token

    def _now(self) -> datetime:
        return self._clock() if self._clock is not None else auth.current_instant()

    def _midnight_margin(self, now: datetime) -> tuple[date, date]:
        """The token days MIDNIGHT_MARGIN before and after ``now``: two different days
        within the margin of a midnight. Compared as instants, so a midnight that a
        daylight-saving change skips or repeats counts as one."""
        zone = self.config.token_timezone
        return today_in(zone, now - MIDNIGHT_MARGIN), today_in(zone, now + MIDNIGHT_MARGIN)

    def _dated_token(self, day: date | None = None) -> Dated:
        """The token for this moment (for ``day`` if given). The key and its generation
        are read together, and the cached token is keyed by the key as well: a token that
        one page makes while another renews the key is never sent with the new key."""
        now = self._now()
        margin = self._midnight_margin(now)
        pinned = self._pinned_day
        pin = pinned if pinned is not None and pinned[1] == margin else None
        if day is None:
            day = pin[0] if pin is not None else today_in(self.config.token_timezone, now)
        with self._credentials_lock:
            credentials, key = self._credentials, self._api_key
        ip = self.public_ip()
        cached = self._token
        if cached is None or cached[:3] != (day, ip, key):
            cached = (day, ip, key, make_token(key, day, ip))
            self._token = cached
        return Dated(Dating(day, margin, pin, credentials), key, cached[3])

    def _accepted(self, dating: Dating, *, tried_after_a_refusal: bool) -> None:
        """Fullbay accepted ``dating.day`` near midnight. Its day only moves forward: an
        answer older than one already seen changes nothing; a day tried after a refusal
        is then sent instead of ours for the rest of the margin, and a pinned day behind
        the accepted one moves up to it."""
        earlier, later = dating.margin
        if earlier == later:
            return
        with self._pin_lock:
            latest = self._accepted_day
            if latest is not None and latest[1] == dating.margin and latest[0] > dating.day:
                return
            self._accepted_day = (dating.day, dating.margin)
            pinned = self._pinned_day
            behind = pinned is not None and pinned[1] == dating.margin and pinned[0] < dating.day
            if tried_after_a_refusal or behind:
                self._pinned_day = (dating.day, dating.margin)

    def _token_day_to_try(self, refused: Dating, recovery: AuthRecovery) -> date | None:
        """Another token day for a refused call, or None. Within the margin of a
        midnight, Fullbay's day is one of the two around it and only moves forward:
        - a day Fullbay has accepted since the call was dated is sent;
        - after the earlier day, the later one; after the later one, the earlier one,
          unless Fullbay has accepted the later one already or refused the earlier one
          with the same credentials (a day refused with a key another page has renewed
          since may be right).
        Past the margin both clocks are on today: today's, unless the call was dated
        with it outside a margin."""
        recovery.refused_days.add((refused.day, refused.credentials))
        now = self._now()
        earlier, later = margin = self._midnight_margin(now)
        if earlier == later:
            dated_near_midnight = refused.margin[0] != refused.margin[1]
            return earlier if refused.day != earlier or dated_near_midnight else None
        pinned = self._pinned_day
        if pinned is not None and pinned[1] != margin:
            pinned = None
        if pinned is not None and pinned != refused.pin:
            return pinned[0]
        if refused.day != later:
            return later
        if (earlier, refused.credentials) in recovery.refused_days or (pinned is not None and pinned[0] == later):
            return None
        return earlier

    def _recover_from_auth_failure(self, refused: FullbayAuthError, recovery: AuthRecovery) -> str | None:
        """What may have changed under us: the token's day (a call at midnight), the key
        (rotated) or, when detected, the egress IP (a NAT swap). The key and the IP are
        renewed once per page, and a renewal another page made since this call was sent
        is used without renewing again; the day is tried again after each renewal.
        Returns what changed, or None if nothing is left to try."""
        dating = refused.dating
        if dating is not None:
            other = self._token_day_to_try(dating, recovery)
            if other is not None:
                recovery.day = other
                return f"the token of {other} (the call was dated {dating.day}, {self.config.token_timezone})"
        renewed = self._renew_credentials(dating.credentials if dating else None, recovery)
        if renewed is not None:  # with new credentials, the day may have been right after all
            recovery.day = None
        return renewed

    def _renew_credentials(self, sent_with: int | None, recovery: AuthRecovery) -> str | None:
        with self._credentials_lock:
            if sent_with is not None and sent_with != self._credentials and not recovery.elsewhere:
                recovery.elsewhere = True
                return "the credentials another call renewed meanwhile"
            if not recovery.key and self._refresh_api_key is not None:
                recovery.key = True
                fresh = self._refresh_api_key()
                if fresh and fresh != self._api_key:
                    self._api_key, self._token = fresh, None
                    self._credentials += 1
                    return "the API key read again from the secret"
            if not recovery.ip and self._ip_detected and not self.config.public_ip:
                recovery.ip = True
                with self._ip_lock:
                    self._ip, self._ip_detected, self._token = None, False, None
                self._credentials += 1
                return "the public IP read again"
        return None

    # -- one request ------------------------------------------------------------

    def _secrets(self, dated: Dated) -> tuple[str | None, ...]:
        """What a message about this call must not show: its own key and token, and the
        client's current ones."""
        cached = self._token  # read once: another page may renew it meanwhile
        return (self.config.api_key, self._api_key, cached[3] if cached else None, dated.key, dated.token)

    def _request_once(
        self, start: date, end: date, page: int, endpoint: str = INVOICES_ENDPOINT, day: date | None = None
    ) -> dict[str, Any]:
        """One call; ``day`` is a token day to send instead of ours (after a refusal)."""
        what = f"{endpoint} {start}..{end} page {page}"
        url = f"{self.config.base_url.rstrip('/')}/{endpoint}"
        self.public_ip()  # detected (or refused) before taking a slot, which nothing then leaks
        self.pacer.acquire(priority=(start.toordinal(), page))
        try:
            dated = self._dated_token(day)  # after any wait for the pacer: dated as sent
            secrets = self._secrets(dated)
        except BaseException:
            self._release(what, ok=True)
            raise
        params = {
            "key": dated.key,
            "token": dated.token,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "page": str(page),
        }
        self.stats.add(requests=1)
        started = time.monotonic()
        try:
            response = self._session.get(
                url, params=params, timeout=(self.config.connect_timeout, self.config.read_timeout)
            )
            content = response.content
        except requests.ConnectTimeout as exc:
            self._release(what, ok=False)
            raise self._endpoint_trouble(
                what, f"no connection within {self.config.connect_timeout:g} s ({type(exc).__name__})", reachable=False
            ) from None
        except requests.Timeout as exc:
            self._release(what, ok=False)
            raise FullbayTransientError(f"{what}: timed out ({type(exc).__name__})") from None
        except requests.ConnectionError as exc:
            self._release(what, ok=False)
            if not isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError):
                detail = redact(str(exc), secrets)
                raise FullbayTransientError(f"{what}: {type(exc).__name__}: {detail[:300]}") from None
            reason = type(exc.args[0].reason).__name__  # NameResolutionError, connection refused...
            raise self._endpoint_trouble(what, f"cannot connect ({reason})", reachable=False) from None
        except requests.RequestException as exc:
            self._release(what, ok=False)
            detail = redact(str(exc), secrets)
            raise FullbayTransientError(f"{what}: {type(exc).__name__}: {detail[:300]}") from None
        except BaseException:
            self._release(what, ok=True)
            raise
        status = response.status_code
        if status == 429 or status >= 500:
            self._release(what, ok=False, retry_after=_parse_retry_after(response.headers.get("Retry-After")))
        else:
            self._release(what, ok=True, latency=time.monotonic() - started)
        try:
            body = self._check_response(what, response, content, page, secrets)
        except FullbayAuthError as exc:
            exc.dating = dated.dating
            raise
        self._accepted(dated.dating, tried_after_a_refusal=day is not None)
        return body

    def _release(self, what: str, *, ok: bool, latency: float | None = None, retry_after: float | None = None) -> None:
        if self.pacer.release(ok=ok, latency=latency, retry_after=retry_after):
            self.log.debug(
                f"{what}: Fullbay pushed back; pacing now {self.pacer.interval:.2f}s between calls, "
                f"{self.pacer.limit} in flight"
            )

    def _check_response(
        self, what: str, response: requests.Response, content: bytes, page: int, secrets: tuple[str | None, ...]
    ) -> dict[str, Any]:
        status = response.status_code
        if status == 429:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            raise FullbayTransientError(f"{what}: HTTP 429 Too Many Requests", retry_after=retry_after)
        if status >= 400:
            # Fullbay's FAIL body is what tells (the HTTP status that comes with it is
            # undocumented): judged by its message whatever the status.
            failed = _fail_envelope(content)
            if failed is not None:
                return self._fail_answer(what, failed, page, secrets, status)
        if status >= 500:
            raise FullbayTransientError(f"{what}: HTTP {status}")
        if status in (401, 403):
            raise FullbayAuthError(self._auth_message(what, f"HTTP {status}"))
        if status == 404:
            # No API answers 404 for its own endpoint: no second try.
            raise self._endpoint_trouble(what, "HTTP 404 Not Found", reachable=True, confirmed=True)
        if status >= 400:
            raise FullbayPermanentError(f"{what}: HTTP {status}")
        kind = response.headers.get("Content-Type", "unknown content type")
        try:
            body = parse_json(content)
        except ValueError:
            detail = f"HTTP {status} with a body that is not valid JSON ({kind}, {len(content)} bytes)"
            if "json" in kind.lower():
                raise FullbayTransientError(f"{what}: {detail}") from None  # garbled, not foreign
            raise self._endpoint_trouble(what, detail, reachable=True) from None
        if not isinstance(body, dict) or "status" not in body:
            shape = "an object without a status" if isinstance(body, dict) else type(body).__name__
            raise self._endpoint_trouble(what, f"expected Fullbay's JSON envelope, got {shape}", reachable=True)
        outcome = body.get("status")
        if outcome == "FAIL":
            return self._fail_answer(what, body, page, secrets)
        self._reached_api = True
        if outcome != "SUCCESS":
            status_field = redact(str(outcome), secrets)[:40]
            raise FullbayTransientError(f"{what}: unexpected status {status_field!r} in the response")
        self._check_envelope(what, body, page)
        return body

    def _fail_answer(
        self, what: str, body: dict[str, Any], page: int, secrets: tuple[str | None, ...], status: int = 200
    ) -> dict[str, Any]:
        """A FAIL answer, by its message: an empty window where FULLBAY_EMPTY_FAIL_PATTERN
        says so (returned as one), else bad credentials, a bad request, or 'try again
        later' (raised). A message neither pattern knows, sent with a 4xx status, is what
        the status says (401/403: credentials; else the request), never retried."""
        self._reached_api = True
        raw_message = str(body.get("message") or "no message")
        if self._empty_fail is not None and self._empty_fail.search(raw_message):
            return _empty_page(page)
        message = redact(raw_message, secrets)[:300]
        said = f"{message} (HTTP {status})" if status != 200 else message
        if self._auth_fail.search(message) or status in (401, 403):
            raise FullbayAuthError(self._auth_message(what, said))
        if self._request_fail.search(message) or 400 <= status < 500:
            raise FullbayPermanentError(f"{what}: Fullbay refused the request: {said}")
        self.pacer.push_back()  # 'try again later', said in the body
        raise FullbayTransientError(f"{what}: Fullbay answered FAIL: {said}")

    def _endpoint_trouble(self, what: str, detail: str, *, reachable: bool, confirmed: bool = False) -> FullbayError:
        """Until the first answer shaped like Fullbay's, an address that cannot be reached or
        answers something else (a web page, a proxy) is most likely a wrong
        FULLBAY_API_BASE_URL: after one confirming retry, fail at once naming the variable
        instead of retrying for minutes. Once the API has answered, it is a transient fault."""
        if not confirmed and (self._reached_api or self._endpoint_strikes < 1):
            self._endpoint_strikes += 1
            return FullbayTransientError(f"{what}: {detail}")
        parts = urlsplit(self.config.base_url)  # without any user:password@ or query
        base = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path.rstrip('/')}"
        if reachable:
            problem = f"does not answer like the Fullbay API ({INVOICES_ENDPOINT}: {detail})"
            hint = f"Set it to the address that serves {INVOICES_ENDPOINT}"
        else:
            problem = f"cannot be reached ({detail})"
            hint = "Check the address and that this machine can reach it (DNS, firewall, proxy, VPC route)"
        return FullbayEndpointError(
            f"FULLBAY_API_BASE_URL ({base}) {problem}. {hint}; Fullbay's is {DEFAULT_BASE_URL}, "
            "the simulator's is printed when it starts."
        )

    def _auth_message(self, what: str, detail: str) -> str:
        return (
            f"{what}: Fullbay rejected the credentials ({detail}). Check that FULLBAY_API_KEY is the "
            f"account's key, that this machine's public IP ({self._ip or 'unknown'}) is on the key's "
            f"allow-list (FULLBAY_PUBLIC_IP must match the egress IP), and that the token day's "
            f"timezone ({self.config.token_timezone}) is the one Fullbay expects."
        )

    @staticmethod
    def _check_envelope(what: str, body: dict[str, Any], page: int) -> None:
        if _is_empty_window(body):
            # An empty window: totalCount 0, totalPages 0 or 1, resultSet empty or absent.
            body.update(_empty_page(page))
            return
        result_set = body.get("resultSet")
        if not isinstance(result_set, list):
            raise FullbayTransientError(f"{what}: the envelope has no resultSet list")
        try:
            numbers = {name: int(body[name]) for name in _ENVELOPE_INTS}
        except (KeyError, TypeError, ValueError):
            raise FullbayTransientError(f"{what}: the envelope lacks valid paging fields") from None
        if numbers["resultCount"] != len(result_set):
            raise FullbayTransientError(
                f"{what}: resultCount {numbers['resultCount']} but resultSet holds {len(result_set)} records"
            )
        if numbers["totalPages"] and numbers["currentPage"] != page:
            raise FullbayTransientError(f"{what}: asked for page {page}, got page {numbers['currentPage']}")
        if numbers["totalCount"] < len(result_set) or (numbers["totalCount"] > 0) != (numbers["totalPages"] > 0):
            raise FullbayTransientError(f"{what}: totalCount and totalPages do not add up")

    def fetch_page(self, start: date, end: date, page: int, endpoint: str = INVOICES_ENDPOINT) -> dict[str, Any]:
        """One page, with retries for transient failures (exponential backoff with
        jitter, Retry-After honoured up to a cap, all within a total deadline)."""
        if (end - start).days + 1 > self.config.window_days or end < start:
            raise ValueError(f"window {start}..{end} is not 1..{self.config.window_days} days")
        recovery = AuthRecovery()
        while True:
            retrying = Retrying(
                retry=retry_if_exception_type(FullbayTransientError),
                stop=stop_after_attempt(self.config.max_attempts) | stop_after_delay(self.config.total_deadline),
                wait=self._wait,
                before_sleep=self._before_sleep,
                reraise=False,
            )
            try:
                result: dict[str, Any] = retrying(self._request_once, start, end, page, endpoint, recovery.day)
                return result
            except RetryError as exc:
                last = exc.last_attempt.exception()
                raise FullbayGaveUpError(
                    f"Gave up on {endpoint} {start}..{end} page {page} after "
                    f"{exc.last_attempt.attempt_number} attempts: {last}"
                ) from None
            except FullbayAuthError as exc:
                renewed = self._recover_from_auth_failure(exc, recovery)
                if renewed is None:
                    raise
                self.log.warning(f"Fullbay rejected the credentials; retrying with {renewed}.")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        jitter = wait_random_exponential(multiplier=self.config.backoff_initial, max=self.config.backoff_max)(state)
        if isinstance(exc, FullbayTransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.config.retry_after_cap) + min(jitter, 1.0)
        return jitter

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(f"{exc}; retry {state.attempt_number}/{self.config.max_attempts - 1} in {delay:.1f}s")

    # -- paging and windows -----------------------------------------------------

    def iter_window_pages(
        self,
        start: date,
        end: date,
        accept: tuple[str, ...] | None = None,
        endpoint: str = INVOICES_ENDPOINT,
        key_field: str = "primaryKey",
        first_page: dict[str, Any] | None = None,
    ) -> Iterator[Page]:
        """Pages of one window, in order (``first_page``: page 1's body, when the caller
        has fetched it already). A window whose totals change between pages
        raises a transient error so the caller can fetch the window again.

        Invoices seen twice raise :class:`FullbayRepeatsError` (carrying the pages'
        digests) unless ``accept`` holds the digests of the previous fetch: then
        the same pages came back, and if distinct invoices plus repeats equal
        ``totalCount`` nothing is missing and the window is accepted with a warning.
        """
        with _PagesAhead(self, start, end, endpoint, first_page) as ahead:
            yield from self._window_pages(start, end, accept, endpoint, key_field, ahead)

    def _window_pages(
        self,
        start: date,
        end: date,
        accept: tuple[str, ...] | None,
        endpoint: str,
        key_field: str,
        ahead: _PagesAhead,
    ) -> Iterator[Page]:
        page, total_pages, total_count, received = 1, None, None, 0
        keys: set[str] = set()
        keyed = 0  # records with a primaryKey (a keyless record is bad input, judged by the loader)
        digests: list[str] = []
        while True:
            body = ahead.take(page)
            pages, count = int(body["totalPages"]), int(body["totalCount"])
            if total_pages is None:
                total_pages, total_count = pages, count
                ahead.plan(total_pages)
            elif (pages, count) != (total_pages, total_count):
                raise FullbayTransientError(
                    f"{endpoint} {start}..{end}: totals changed between pages "
                    f"({total_count} records/{total_pages} pages, then {count}/{pages})"
                )
            records = body["resultSet"]
            digests.append(_page_digest(records, key_field))
            received += len(records)
            for record in records:
                if isinstance(record, dict) and record.get(key_field) not in (None, ""):
                    keyed += 1
                    keys.add(str(record[key_field]))
            self.stats.add(pages=1, records=len(records))
            yield Page(start, end, page, pages, count, records, strict=not isinstance(body, LenientBody))
            if page >= pages:
                break
            page += 1
        if received != total_count:
            raise FullbayTransientError(
                f"{endpoint} {start}..{end}: received {received} records, totalCount said {total_count}"
            )
        repeats = keyed - len(keys)
        if repeats:
            what = f"{endpoint} {start}..{end}: {repeats} record(s) appeared on two pages"
            if accept is None or accept != tuple(digests):
                # Offset paging over data that changed: a record seen twice means another
                # may have been skipped. Only a fresh pass over the window can tell.
                raise FullbayRepeatsError(what, tuple(digests))
            # received == totalCount was checked above: distinct + repeats (+ keyless) add up.
            self.stats.add(repeats=repeats)
            self.log.warning(
                f"{what} twice in the same way; distinct records plus repeats equal totalCount "
                f"({total_count}), so nothing is missing: the window is accepted."
            )

    def iter_invoices(self, start: date, end: date) -> Iterator[dict[str, Any]]:
        """Every invoice dated ``start..end``, one window and one page at a time."""
        for window_start, window_end in date_windows(start, end, self.config.window_days):
            for page in self.iter_window_pages(window_start, window_end):
                yield from page.records

    def close(self) -> None:
        self._session.close()


class _PagesAhead:
    """The pages of one window, fetched up to ``max_in_flight`` ahead of the page the
    caller is reading, once page 1 has told how many there are. The caller still
    reads them in order (so every check on the sequence of pages is unchanged); the
    pacer bounds the calls in flight across all windows and serves the oldest window
    first. With ``max_in_flight`` 1 every page is fetched when it is read, as before.

    A ThreadPoolExecutor of its own per window: ``fetch_page`` blocks (HTTP, retries,
    pacing), and its futures carry each page's exception to the reader unchanged."""

    def __init__(
        self, client: FullbayClient, start: date, end: date, endpoint: str, first_page: dict[str, Any] | None = None
    ) -> None:
        self._client, self._start, self._end, self._endpoint = client, start, end, endpoint
        self._first_page = first_page
        self._depth = client.config.max_in_flight if client.config.max_in_flight > 1 else 0
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[int, Future[dict[str, Any]]] = {}
        self._total = 1
        self._submitted = 1  # the highest page asked for so far

    def plan(self, total_pages: int) -> None:
        """Page 1 said how many pages there are: start fetching the next ones."""
        self._total = total_pages
        self._top_up(1)

    def take(self, page: int) -> dict[str, Any]:
        """Page ``page``'s body (fetched ahead, or now), as ``fetch_page`` gives it."""
        if page == 1 and self._first_page is not None:
            body, self._first_page = self._first_page, None
            return body
        future = self._futures.pop(page, None)
        self._top_up(page)
        if future is None:
            return self._client.fetch_page(self._start, self._end, page, self._endpoint)
        return future.result()

    def _top_up(self, reading: int) -> None:
        while self._depth and self._submitted < min(self._total, reading + self._depth):
            self._submitted += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._depth, thread_name_prefix="fullbay-page")
            self._futures[self._submitted] = self._pool.submit(
                self._client.fetch_page, self._start, self._end, self._submitted, self._endpoint
            )

    def __enter__(self) -> _PagesAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Read to the end, or stopped by an error: pages not started are dropped, and
        # calls already out are waited for, so none outlives the window's fetch.
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
