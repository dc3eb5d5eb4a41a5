"""The Fullbay client against the simulator over real HTTP."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from fullbay_dagster.fullbay import auth
from fullbay_dagster.fullbay import client as client_module
from fullbay_dagster.fullbay.auth import make_token, today_in
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.errors import (
    FullbayAuthError,
    FullbayEndpointError,
    FullbayGaveUpError,
    FullbayPermanentError,
    FullbayTransientError,
)
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.fullbay.windows import date_windows
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.static_http import serving

DAY = date(2025, 3, 12)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def make_client(
    simulator: Simulator, clock: Callable[[], datetime] | None = None, **overrides: object
) -> tuple[FullbayClient, Captured]:
    settings: dict[str, object] = {
        "api_key": TEST_KEY,
        "base_url": simulator.url,
        "public_ip": "127.0.0.1",
        "min_interval": 0.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "retry_after_cap": 0.05,
        "read_timeout": 5.0,
        **overrides,
    }
    logger = logging.getLogger(f"test-client-{id(simulator)}")
    captured = Captured()
    logger.addHandler(captured)
    logger.setLevel(logging.DEBUG)
    return FullbayClient(FullbayClientConfig(**settings), logger=logger, clock=clock), captured  # type: ignore[arg-type]


# -- token and windows ------------------------------------------------------------


def test_token_is_sha1_of_key_today_and_ip() -> None:
    expected = hashlib.sha1(b"abc-1232025-03-12203.0.113.9").hexdigest()
    assert make_token("abc-123", date(2025, 3, 12), "203.0.113.9") == expected
    assert re.fullmatch(r"[0-9a-f]{40}", expected)


def test_token_day_follows_the_configured_timezone() -> None:
    late_utc = datetime(2025, 3, 12, 23, 30, tzinfo=UTC)
    assert today_in("UTC", late_utc) == date(2025, 3, 12)
    assert today_in("Pacific/Auckland", late_utc) == date(2025, 3, 13)
    assert today_in("America/Chicago", datetime(2025, 3, 12, 3, 0, tzinfo=UTC)) == date(2025, 3, 11)


def test_client_token_is_cached_and_uses_the_configured_ip(simulator: Simulator) -> None:
    client, _ = make_client(simulator, public_ip="198.51.100.7")
    assert client.token() == make_token(TEST_KEY, today_in("UTC"), "198.51.100.7")
    assert client.token() is client.token()


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, [(0, 0)]), (7, [(0, 6)]), (8, [(0, 6), (7, 7)]), (14, [(0, 6), (7, 13)]), (15, [(0, 6), (7, 13), (14, 14)])],
)
def test_windows_never_exceed_seven_days(days: int, expected: list[tuple[int, int]]) -> None:
    windows = list(date_windows(DAY, DAY + timedelta(days=days - 1)))
    assert windows == [(DAY + timedelta(days=a), DAY + timedelta(days=b)) for a, b in expected]


def test_windows_reject_bad_ranges() -> None:
    with pytest.raises(ValueError, match="before"):
        list(date_windows(DAY, DAY - timedelta(days=1)))
    with pytest.raises(ValueError, match="between 1 and 7"):
        list(date_windows(DAY, DAY, max_days=8))


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="FULLBAY_API_KEY"):
        FullbayClientConfig(api_key="")
    with pytest.raises(ValueError, match="http"):
        FullbayClientConfig(api_key="k", base_url="app.fullbay.com/services")
    with pytest.raises(FullbayPermanentError, match="FULLBAY_PUBLIC_IP"):
        FullbayClientConfig(api_key="k", public_ip="not-an-ip")
    assert TEST_KEY not in repr(FullbayClientConfig(api_key=TEST_KEY))


# -- paging ------------------------------------------------------------------------


def test_pages_until_total_pages_and_yields_every_record_once(simulator: Simulator) -> None:
    client, _ = make_client(simulator)
    records = list(client.iter_invoices(DAY, DAY + timedelta(days=2)))
    per_day = simulator.config.invoices_per_day
    assert len(records) == 3 * per_day
    assert len({r["primaryKey"] for r in records}) == 3 * per_day
    pages = -(-3 * per_day // simulator.config.page_size)
    assert client.stats.as_dict() == {
        "requests": pages,
        "pages": pages,
        "retries": 0,
        "records": 3 * per_day,
        "repeats": 0,
    }
    requested = [r["page"] for r in simulator.requests()]
    # Page 1 first (it tells how many there are), then every page once; pages after
    # the first are fetched ahead, up to max_in_flight at once, so they may arrive out of order.
    assert requested[0] == 1
    assert sorted(requested) == list(range(1, pages + 1))


def test_pages_fetched_ahead_are_read_in_page_order(simulator: Simulator) -> None:
    one_at_a_time, _ = make_client(simulator, max_in_flight=1)
    in_order = [r["primaryKey"] for r in one_at_a_time.iter_invoices(DAY, DAY + timedelta(days=2))]
    simulator.clear_requests()
    ahead, _ = make_client(simulator, max_in_flight=3)
    assert [r["primaryKey"] for r in ahead.iter_invoices(DAY, DAY + timedelta(days=2))] == in_order
    assert len(simulator.requests()) == ahead.stats.requests == -(-len(in_order) // simulator.config.page_size)


def test_long_ranges_are_split_into_windows_of_at_most_seven_days(simulator: Simulator) -> None:
    client, _ = make_client(simulator)
    records = list(client.iter_invoices(DAY, DAY + timedelta(days=15)))
    assert len(records) == 16 * simulator.config.invoices_per_day
    spans = {
        (date.fromisoformat(r["endDate"]) - date.fromisoformat(r["startDate"])).days + 1 for r in simulator.requests()
    }
    assert max(spans) <= 7


def test_an_empty_day_is_one_request_and_no_records(simulator: Simulator) -> None:
    simulator.configure(invoices_per_day=0)
    client, _ = make_client(simulator)
    assert list(client.iter_invoices(DAY, DAY)) == []
    assert client.stats.requests == 1


def test_a_window_longer_than_seven_days_is_never_sent(simulator: Simulator) -> None:
    client, _ = make_client(simulator)
    with pytest.raises(ValueError, match="window"):
        client.fetch_page(DAY, DAY + timedelta(days=7), 1)
    assert simulator.requests() == []


# -- transient faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", ["429", "429-no-retry-after", "500", "502", "503", "504", "reset", "malformed", "html", "fail"]
)
def test_transient_faults_are_retried_and_the_data_is_complete(simulator: Simulator, fault: str) -> None:
    clean, _ = make_client(simulator)
    expected = list(clean.iter_invoices(DAY, DAY))
    simulator.clear_requests()
    client, log = make_client(simulator)
    simulator.queue_faults(fault)
    records = list(client.iter_invoices(DAY, DAY))
    assert records == expected
    assert client.stats.retries == 1
    assert simulator.requests()[0]["fault"] == fault
    assert any("retry 1/" in message for message in log.messages)


def test_huge_retry_after_is_capped(simulator: Simulator) -> None:
    client, log = make_client(simulator, retry_after_cap=0.2)
    simulator.queue_faults("429-huge")
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    delays = [float(m) for m in re.findall(r"retry 1/\d+ in ([\d.]+)s", " ".join(log.messages))]
    assert delays and delays[0] <= 0.2 + 1.0  # the cap plus at most one second of jitter


def test_retry_after_is_honoured(simulator: Simulator) -> None:
    simulator.configure(retry_after=1)
    client, log = make_client(simulator, retry_after_cap=30)
    simulator.queue_faults("429")
    list(client.iter_invoices(DAY, DAY))
    delays = [float(m) for m in re.findall(r"retry 1/\d+ in ([\d.]+)s", " ".join(log.messages))]
    assert delays and delays[0] >= 1.0


def test_read_timeout_is_retried(simulator: Simulator) -> None:
    simulator.configure(slow_seconds=1.5)
    client, _ = make_client(simulator, read_timeout=0.3)
    simulator.queue_faults("timeout")
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert client.stats.retries == 1


def test_gives_up_after_max_attempts_with_a_clear_message(simulator: Simulator) -> None:
    client, _ = make_client(simulator, max_attempts=3)
    simulator.queue_faults("503", "503", "503", "503")
    with pytest.raises(FullbayGaveUpError, match=r"after 3 attempts: .*HTTP 503") as caught:
        list(client.iter_invoices(DAY, DAY))
    assert len(simulator.requests()) == 3
    assert TEST_KEY not in str(caught.value)


# -- permanent faults ------------------------------------------------------------------


def test_bad_key_fails_fast_without_retrying(simulator: Simulator) -> None:
    client, _ = make_client(simulator, api_key="wrong-key")
    with pytest.raises(FullbayAuthError, match="FULLBAY_API_KEY") as caught:
        list(client.iter_invoices(DAY, DAY))
    assert len(simulator.requests()) == 1
    assert "wrong-key" not in str(caught.value)


def test_fail_messages_are_classified_by_the_configured_patterns(simulator: Simulator) -> None:
    """Fullbay's FAIL wording is undocumented: an account that sees "unavailable" for a
    refused key makes it permanent (FULLBAY_AUTH_FAIL_PATTERN) instead of retried."""
    client, _ = make_client(simulator, max_attempts=3, backoff_initial=0.01)
    simulator.queue_faults("fail")
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert len(simulator.requests()) > 1  # retried by default
    client, _ = make_client(simulator, auth_fail_pattern="(?i)unavailable", max_attempts=3)
    before = len(simulator.requests())
    simulator.queue_faults("fail")
    with pytest.raises(FullbayAuthError):
        list(client.iter_invoices(DAY, DAY))
    assert len(simulator.requests()) == before + 1


def test_ip_not_allow_listed_fails_fast_and_names_the_ip(simulator: Simulator) -> None:
    client, _ = make_client(simulator, public_ip="203.0.113.50")
    with pytest.raises(FullbayAuthError, match=r"203\.0\.113\.50.*allow-list") as caught:
        list(client.iter_invoices(DAY, DAY))
    assert len(simulator.requests()) == 1
    assert TEST_KEY not in str(caught.value) and client.token() not in str(caught.value)


def test_envelope_that_does_not_add_up_is_an_error() -> None:
    body = {"status": "SUCCESS", "resultCount": 3, "totalCount": 3, "currentPage": 1, "totalPages": 1}
    with pytest.raises(FullbayTransientError, match="resultCount 3 but resultSet holds 2"):
        FullbayClient._check_envelope("x", {**body, "resultSet": [{}, {}]}, 1)
    with pytest.raises(FullbayTransientError, match="asked for page 2"):
        FullbayClient._check_envelope("x", {**body, "resultSet": [{}, {}, {}]}, 2)
    with pytest.raises(FullbayTransientError, match="no resultSet"):
        FullbayClient._check_envelope("x", body, 1)


# -- secrets ---------------------------------------------------------------------------------


def test_connection_errors_do_not_leak_the_key_or_token(caplog: pytest.LogCaptureFixture) -> None:
    client = FullbayClient(
        FullbayClientConfig(
            api_key=TEST_KEY,
            base_url="http://127.0.0.1:9/services",  # discard port: nothing listens
            public_ip="127.0.0.1",
            max_attempts=2,
            backoff_initial=0.01,
            backoff_max=0.01,
            min_interval=0,
        )
    )
    caplog.set_level(logging.DEBUG)
    # Nothing ever answered: the base URL is named (test_failure_messages.py) after 2 tries.
    with pytest.raises(FullbayEndpointError) as caught:
        list(client.iter_invoices(DAY, DAY))
    token = client.token()
    text = str(caught.value) + repr(caught.value) + caplog.text
    assert "ConnectionError" in str(caught.value)
    assert TEST_KEY not in text and token not in text
    assert caught.value.__cause__ is None


def test_urllib3_debug_lines_are_redacted(simulator: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    client, _ = make_client(simulator)
    list(client.iter_invoices(DAY, DAY))
    request_lines = [r.getMessage() for r in caplog.records if "getInvoices.php" in r.getMessage()]
    assert request_lines, "urllib3 should log the request line at DEBUG"
    assert all(TEST_KEY not in line and client.token() not in line for line in request_lines)


# -- the token at midnight ---------------------------------------------------------------------


def at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ours", "why"),
    [
        (lambda today: at(today - timedelta(days=1), 23, 59, 30), "dated before midnight, checked after it"),
        (lambda today: at(today + timedelta(days=1), 0, 0, 30), "our clock a little ahead of Fullbay's"),
    ],
)
def test_a_call_rejected_near_midnight_is_retried_with_the_other_days_token(
    simulator: Simulator, ours: object, why: str
) -> None:
    """Fullbay's day (the simulator's real clock) is ``today``; ours is 30 s across midnight."""
    today = today_in("UTC")
    client, log = make_client(simulator, clock=lambda: ours(today))  # type: ignore[operator]
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0, why
    assert len(simulator.requests()) == 2  # refused, then served
    assert any(f"retrying with the token of {today}" in m for m in log.messages)
    # The day that worked is kept for the rest of the margin: the next call is not refused first.
    simulator.clear_requests()
    client.fetch_page(DAY, DAY, 2)
    assert len(simulator.requests()) == 1


def test_a_wrong_token_day_away_from_midnight_is_not_retried(simulator: Simulator) -> None:
    client, log = make_client(simulator, clock=lambda: at(today_in("UTC") - timedelta(days=1), 12, 0))
    with pytest.raises(FullbayAuthError, match="token day's timezone"):
        client.fetch_page(DAY, DAY, 1)
    assert len(simulator.requests()) == 1
    assert not any("retrying with" in m for m in log.messages)


def test_a_rotated_key_near_midnight_still_gets_its_retry(simulator: Simulator) -> None:
    """The other day's token is tried first and refused too; then the key is read again."""
    today = today_in("UTC")
    simulator.configure(api_key="rotated-key")
    base, log = make_client(simulator)
    client = FullbayClient(
        base.config, logger=base.log, refresh_api_key=lambda: "rotated-key", clock=lambda: at(today, 23, 58)
    )
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
    assert [m.split(" (")[0] for m in log.messages if "retrying with" in m] == [
        f"Fullbay rejected the credentials; retrying with the token of {today + timedelta(days=1)}",
        "Fullbay rejected the credentials; retrying with the API key read again from the secret.",
    ]
    assert len(simulator.requests()) == 3


def test_a_working_pinned_day_survives_a_key_rotation_near_midnight(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fullbay is 30 s past midnight, we are 10 s before it: the next day's token is
    pinned; then the key rotates, and the new key must go with the pinned day."""
    day = date(2025, 6, 1)
    monkeypatch.setattr(auth, "current_instant", lambda: at(day + timedelta(days=1), 0, 0, 20))
    base, _ = make_client(simulator)
    client = FullbayClient(
        base.config, logger=base.log, refresh_api_key=lambda: "rotated-key", clock=lambda: at(day, 23, 59, 50)
    )
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
    simulator.configure(api_key="rotated-key")
    assert client.fetch_page(DAY, DAY, 2)["resultCount"] > 0


def test_pages_refused_together_after_a_key_rotation_read_the_key_once(simulator: Simulator) -> None:
    """Both calls are in flight with the old key (0.3 s each); the page that is refused
    second retries with the key the first one read, instead of failing."""
    simulator.configure(api_key="rotated-key", latency=0.3)
    reads: list[str] = []

    def refresh() -> str:
        reads.append("rotated-key")
        return reads[-1]

    base, log = make_client(simulator, max_in_flight=2)
    client = FullbayClient(base.config, logger=base.log, refresh_api_key=refresh)
    with ThreadPoolExecutor(2) as pool:
        pages = list(pool.map(lambda page: client.fetch_page(DAY, DAY, page), (1, 2)))
    assert all(page["resultCount"] > 0 for page in pages)
    assert len(reads) == 1
    assert any("the credentials another call renewed meanwhile" in m for m in log.messages)


def test_a_call_dated_before_midnight_and_refused_after_the_margin_uses_todays_token(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = today_in("UTC")
    monkeypatch.setattr(auth, "current_instant", lambda: at(today, 0, 6))  # Fullbay's clock
    moments = iter([at(today - timedelta(days=1), 23, 59, 59), at(today, 0, 6), at(today, 0, 6, 1)])
    client, log = make_client(simulator, clock=lambda: next(moments))
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
    assert any(f"retrying with the token of {today}" in m for m in log.messages)


@pytest.mark.parametrize(
    ("zone", "fullbay", "ours", "other_day"),
    [
        # America/Santiago went from 2024-09-07 23:59:59 -04 to 2024-09-08 01:00 -03: our
        # clock 2 s past that midnight (an hour past it on the wall), Fullbay's 2 s before.
        (
            "America/Santiago",
            datetime(2024, 9, 8, 3, 59, 59, tzinfo=UTC),
            datetime(2024, 9, 8, 4, 0, 1, tzinfo=UTC),
            "2024-09-07",
        ),
        # Asia/Kathmandu is UTC+05:45, so its midnight is 18:15 UTC: ours 20 s before, Fullbay's 20 s past.
        (
            "Asia/Kathmandu",
            datetime(2025, 6, 1, 18, 15, 20, tzinfo=UTC),
            datetime(2025, 6, 1, 18, 14, 40, tzinfo=UTC),
            "2025-06-02",
        ),
    ],
)
def test_midnight_is_found_in_zones_with_daylight_saving_or_odd_offsets(
    monkeypatch: pytest.MonkeyPatch, zone: str, fullbay: datetime, ours: datetime, other_day: str
) -> None:
    """The other day's token is tried once, then kept for the margin."""
    monkeypatch.setattr(auth, "current_instant", lambda: fullbay)
    config = SimulatorConfig(api_key=TEST_KEY, invoices_per_day=12, page_size=5, expected_ip="127.0.0.1")
    with Simulator(replace(config, token_timezone=zone)) as simulator:
        client, log = make_client(simulator, clock=lambda: ours, token_timezone=zone)
        assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
        assert client.fetch_page(DAY, DAY, 2)["resultCount"] > 0
        assert len(simulator.requests()) == 3
    assert any(f"retrying with the token of {other_day}" in m for m in log.messages)


def test_a_day_retry_refused_as_fullbays_midnight_passes_tries_the_later_day_again(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our clock is a minute ahead of Fullbay's. The call dated after our midnight
    reaches Fullbay a second before its midnight and is refused; the retry with the
    day before reaches it a second after and is refused too. Fullbay's day only moves
    forward, so the later day is tried again, and served."""
    today = date(2025, 6, 2)
    fullbay = [at(today - timedelta(days=1), 23, 59, 59), at(today, 0, 0, 1)]
    monkeypatch.setattr(auth, "current_instant", lambda: fullbay.pop(0) if len(fullbay) > 1 else fullbay[0])
    client, log = make_client(simulator, clock=lambda: at(today, 0, 1))
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
    assert len(simulator.requests()) == 3
    assert [m.split(" (")[0].rsplit(" ", 1)[-1] for m in log.messages if "retrying with" in m] == [
        str(today - timedelta(days=1)),
        str(today),
    ]


def test_a_pin_another_page_has_used_survives_an_unrelated_refusal(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fullbay is 30 s past midnight, we are 10 s before it. A call to an endpoint this
    key may not use is refused for its day first, and its retry with the next day is
    slow. Meanwhile an invoices page is refused, retried with the next day and served:
    that day is pinned. The endpoint's retry is then refused (for the endpoint), which
    must not undo the pin: the next invoices page is served at once."""
    day = date(2025, 6, 1)
    monkeypatch.setattr(auth, "current_instant", lambda: at(day + timedelta(days=1), 0, 0, 20))
    simulator.configure(refused_endpoints=("getVendorBills.php",), slow_seconds=1.0)
    client, _ = make_client(simulator, clock=lambda: at(day, 23, 59, 50), max_in_flight=2)
    simulator.queue_faults(None, "timeout")  # the endpoint's first call: prompt; its retry: 1 s
    with ThreadPoolExecutor(1) as pool:
        refused = pool.submit(client.fetch_page, DAY, DAY, 1, "getVendorBills.php")
        deadline = time.monotonic() + 5
        while not simulator.requests() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the retry with the next day's token is out (and waiting 1 s)
        assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
        with pytest.raises(FullbayAuthError, match="not authorized for this endpoint"):
            refused.result(timeout=10)
    simulator.clear_requests()
    assert client.fetch_page(DAY, DAY, 2)["resultCount"] > 0
    assert len(simulator.requests()) == 1


class HeldAnswers(requests.Session):
    """A session that calls ``on_answer(n)`` when answer n (1, 2, ...) has arrived and
    before the client reads it: a slow network, where a test needs one."""

    def __init__(self, on_answer: Callable[[int], None]) -> None:
        super().__init__()
        self._on_answer = on_answer
        self._count = 0
        self._lock = threading.Lock()

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().get(url, **kwargs)
        with self._lock:
            self._count += 1
            number = self._count
        self._on_answer(number)
        return response


def fullbay_clock(monkeypatch: pytest.MonkeyPatch, start: datetime) -> list[datetime]:
    """Fullbay's clock (the simulator checks tokens by it), in a cell the test moves forward."""
    now = [start]
    monkeypatch.setattr(auth, "current_instant", lambda: now[0])
    return now


def ahead_of_fullbay(
    simulator: Simulator, fullbay: list[datetime], ahead: timedelta, on_answer: Callable[[int], None]
) -> FullbayClient:
    """A client whose clock is ``ahead`` of Fullbay's, on a network that ``on_answer`` slows."""
    base, _ = make_client(simulator)
    return FullbayClient(base.config, logger=base.log, session=HeldAnswers(on_answer), clock=lambda: fullbay[0] + ahead)


def page_b_while_page_a_is_held(
    client: FullbayClient,
    a_held: threading.Event,
    b_done: threading.Event,
    meanwhile: Callable[[], None] = lambda: None,
) -> None:
    """Page 1 in another thread until its answer is held (``a_held``), then page 2 here,
    then page 1 goes on (``b_done``): both must be served."""
    with ThreadPoolExecutor(1) as pool:
        page_a = pool.submit(client.fetch_page, DAY, DAY, 1)
        assert a_held.wait(10)
        meanwhile()
        try:
            assert client.fetch_page(DAY, DAY, 2)["resultCount"] > 0
        finally:
            b_done.set()
        assert page_a.result(timeout=10)["resultCount"] > 0


def test_a_page_refused_before_another_page_pinned_the_later_day_tries_it(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our clock is 40 s ahead of Fullbay's. Page A's call with the later day is refused
    (Fullbay is still on the earlier day), and the answer is slow. Meanwhile Fullbay
    passes its midnight, and page B, refused with the later day and then the earlier
    one, is served with the later day, which is pinned. When A reads its refusal, the
    pinned day was accepted after A's call was dated: A sends it too."""
    day, ahead = date(2025, 6, 1), timedelta(seconds=40)
    fullbay = fullbay_clock(monkeypatch, at(day, 23, 59, 50))
    a_answered, b_done = threading.Event(), threading.Event()

    def on_answer(number: int) -> None:
        if number == 1:  # page A's refusal: held until page B is done
            a_answered.set()
            assert b_done.wait(10)
        elif number == 2:  # page B's first refusal: then Fullbay passes its midnight
            fullbay[0] = at(day + timedelta(days=1), 0, 0, 10)

    client = ahead_of_fullbay(simulator, fullbay, ahead, on_answer)
    page_b_while_page_a_is_held(client, a_answered, b_done)


def test_a_call_dated_near_midnight_and_refused_after_our_margin_is_retried(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our clock is 4 min 59 s ahead of Fullbay's. A call dated 00:04:58 by ours (the
    later day) is refused at 23:59:59 by Fullbay's; the refusal is read at 00:05:00 by
    ours, when our margin has ended. The refusal is judged by when the call was dated:
    near midnight, so it is retried with today's token, and served."""
    day, ahead = date(2025, 6, 1), timedelta(minutes=4, seconds=59)
    fullbay = fullbay_clock(monkeypatch, at(day, 23, 59, 59))

    def on_answer(number: int) -> None:
        if number == 1:  # the refusal takes 2 s to be read
            fullbay[0] = at(day + timedelta(days=1), 0, 0, 1)

    client = ahead_of_fullbay(simulator, fullbay, ahead, on_answer)
    assert client.fetch_page(DAY, DAY, 1)["resultCount"] > 0
    assert len(simulator.requests()) == 2


def test_a_late_answer_never_pins_a_day_behind_one_fullbay_has_accepted(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our clock is 40 s ahead of Fullbay's. Page A is refused with the later day and
    retried with the earlier one, which Fullbay accepts at 23:59:50, but the answer is
    slow. Meanwhile Fullbay passes its midnight and page B is served with the later day.
    A's late answer must not pin the earlier day: the next page is served at once."""
    day, ahead = date(2025, 6, 1), timedelta(seconds=40)
    fullbay = fullbay_clock(monkeypatch, at(day, 23, 59, 50))
    a_accepted, b_done = threading.Event(), threading.Event()

    def on_answer(number: int) -> None:
        if number == 2:  # page A's retry with the earlier day, accepted: held until B is done
            a_accepted.set()
            assert b_done.wait(10)

    client = ahead_of_fullbay(simulator, fullbay, ahead, on_answer)

    def fullbay_passes_midnight() -> None:
        fullbay[0] = at(day + timedelta(days=1), 0, 0, 10)

    page_b_while_page_a_is_held(client, a_accepted, b_done, fullbay_passes_midnight)
    simulator.clear_requests()
    assert client.fetch_page(DAY, DAY, 3)["resultCount"] > 0
    assert len(simulator.requests()) == 1


def test_a_token_made_with_the_old_key_during_a_renewal_is_not_sent_with_the_new_key(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page 1 makes its token with the old key; meanwhile page 2 is refused and reads
    the rotated key. Page 1's old-key token must not become the token every later call
    sends with the new key: page 1 is retried and served, and so is page 3."""
    real_make_token = client_module.make_token
    making, renewed = threading.Event(), threading.Event()
    first = [True]
    gate = threading.Lock()

    def paused_make_token(key: str, today: date, ip: str) -> str:
        with gate:
            hold, first[0] = first[0] and key == TEST_KEY, False
        if hold:  # the run's first token: let another page renew the key meanwhile
            making.set()
            renewed.wait(5)
        return real_make_token(key, today, ip)

    monkeypatch.setattr(client_module, "make_token", paused_make_token)
    base, _ = make_client(simulator, max_in_flight=2)
    client = FullbayClient(base.config, logger=base.log, refresh_api_key=lambda: "rotated-key")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.fetch_page, DAY, DAY, 1)
        assert making.wait(5)
        simulator.configure(api_key="rotated-key")
        assert client.fetch_page(DAY, DAY, 2)["resultCount"] > 0  # refused, key read again, served
        renewed.set()
        assert slow.result(timeout=10)["resultCount"] > 0
    assert client.fetch_page(DAY, DAY, 3)["resultCount"] > 0


def test_a_day_refused_with_a_key_another_page_has_since_renewed_is_tried_again(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both clocks are at 23:59:50 and the key has been rotated. Page A's call (old key,
    today) is refused, but its answer is slow. Meanwhile page B is refused, tries the next
    day (refused), reads the rotated key and is served with today's token. When A reads its
    refusal it tries the next day, now with B's key, and is refused for the day. Today was
    only ever refused with the old key: today with the new key is what Fullbay accepts, so
    A must send it rather than fail."""
    day = date(2025, 6, 1)
    fullbay = fullbay_clock(monkeypatch, at(day, 23, 59, 50))
    simulator.configure(api_key="rotated-key")
    a_answered, b_done = threading.Event(), threading.Event()

    def on_answer(number: int) -> None:
        if number == 1:  # page A's refusal (old key): held until page B is done
            a_answered.set()
            assert b_done.wait(10)

    base, log = make_client(simulator, max_in_flight=2)
    client = FullbayClient(
        base.config,
        logger=base.log,
        session=HeldAnswers(on_answer),
        refresh_api_key=lambda: "rotated-key",
        clock=lambda: fullbay[0],
    )
    page_b_while_page_a_is_held(client, a_answered, b_done)
    assert str(day + timedelta(days=1)) in " ".join(log.messages)


def test_a_failed_ip_detection_frees_its_pacer_slot(simulator: Simulator) -> None:
    """With one call in flight allowed, a leaked slot would hang every later call."""
    with serving(lambda _: (200, "text/html", b"<html>captive portal</html>")) as url:
        client, _ = make_client(simulator, public_ip=None, ip_echo_url=f"{url}/", max_in_flight=1)
        for _ in range(2):
            with pytest.raises(FullbayPermanentError, match="not an IPv4 address"):
                client.fetch_page(DAY, DAY, 1)
            assert client.pacer.in_flight == 0


# -- IP detection ----------------------------------------------------------------------------


@pytest.fixture()
def ip_echo() -> Iterator[tuple[str, list[str]]]:
    answers = ["127.0.0.1\n"]
    with serving(lambda _: (200, "text/plain", answers[0].encode())) as url:
        yield f"{url}/", answers


def test_public_ip_is_detected_once_and_used_for_the_token(
    simulator: Simulator, ip_echo: tuple[str, list[str]]
) -> None:
    url, _ = ip_echo
    client, _ = make_client(simulator, public_ip=None, ip_echo_url=url)
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert client.public_ip() == "127.0.0.1"


@pytest.mark.parametrize("answer", ["<html>oops</html>", "2001:db8::1\n"])
def test_garbage_from_the_ip_echo_service_is_a_clear_error(
    simulator: Simulator, ip_echo: tuple[str, list[str]], answer: str
) -> None:
    """An IPv6 address is refused too: Fullbay's token takes the public IPv4 address."""
    url, answers = ip_echo
    answers[0] = answer
    client, _ = make_client(simulator, public_ip=None, ip_echo_url=url)
    with pytest.raises(FullbayPermanentError, match="not an IPv4 address"):
        list(client.iter_invoices(DAY, DAY))
    assert simulator.requests() == []


def test_auth_failure_with_a_detected_ip_detects_again_once(
    simulator: Simulator, ip_echo: tuple[str, list[str]]
) -> None:
    url, answers = ip_echo
    answers[0] = "198.51.100.1"  # a stale egress IP; the simulator expects 127.0.0.1
    client, log = make_client(simulator, public_ip=None, ip_echo_url=url)
    client.public_ip()
    answers[0] = "127.0.0.1"
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert any("retrying with the public IP read again" in m for m in log.messages)


# -- spooling ------------------------------------------------------------------------------------


def test_fetch_range_spools_each_day_into_its_own_file(simulator: Simulator, tmp_path: Path) -> None:
    client, _ = make_client(simulator, max_in_flight=2)
    result = fetch_range(client, DAY, DAY + timedelta(days=15), tmp_path)
    per_day = simulator.config.invoices_per_day
    assert result.counts == {DAY + timedelta(days=n): per_day for n in range(16)}
    for day in result.counts:
        records = list(result.records(day))
        assert len(records) == per_day
        assert {r["invoiceDate"] for r in records} == {day.isoformat()}
    windows = {(r["startDate"], r["endDate"]) for r in simulator.requests()}
    assert len(windows) == 3


def test_a_busy_account_is_fetched_one_day_per_window(simulator: Simulator, tmp_path: Path) -> None:
    from fullbay_dagster.fullbay.spool import DENSE_PAGES_PER_DAY

    simulator.configure(page_size=1)  # 12 pages a day: a busy account in miniature
    assert simulator.config.invoices_per_day >= DENSE_PAGES_PER_DAY
    expected = {r["primaryKey"] for r in make_client(simulator)[0].iter_invoices(DAY, DAY + timedelta(days=8))}
    simulator.clear_requests()
    client, _ = make_client(simulator, max_in_flight=2)
    result = fetch_range(client, DAY, DAY + timedelta(days=8), tmp_path)
    assert {r["primaryKey"] for day in result.counts for r in result.records(day)} == expected
    assert sum(result.counts.values()) == len(expected)
    requests = simulator.requests()
    # page 1 of the first 7-day window tells it is busy; then one window per day
    assert (requests[0]["startDate"], requests[0]["endDate"]) == (str(DAY), str(DAY + timedelta(days=6)))
    assert all(r["startDate"] == r["endDate"] for r in requests[1:])
    assert len(requests) == 1 + len(expected)


def test_a_quiet_account_keeps_seven_day_windows_without_an_extra_call(simulator: Simulator, tmp_path: Path) -> None:
    client, _ = make_client(simulator, max_in_flight=2)
    result = fetch_range(client, DAY, DAY + timedelta(days=8), tmp_path)
    pages = sum(
        -(-n // simulator.config.page_size)
        for n in (7 * simulator.config.invoices_per_day, 2 * simulator.config.invoices_per_day)
    )
    assert sum(result.counts.values()) == 9 * simulator.config.invoices_per_day
    assert client.stats.requests == len(simulator.requests()) == pages


# -- empty windows and paging quirks ---------------------------------------------------------


@pytest.mark.parametrize("shape", ["pages0", "pages1", "absent"])
def test_an_empty_window_is_valid_in_every_shape(simulator: Simulator, tmp_path: Path, shape: str) -> None:
    simulator.configure(invoices_per_day=0, empty_shape=shape)
    client, captured = make_client(simulator)
    spool = fetch_range(client, DAY, DAY + timedelta(days=6), tmp_path)
    assert sum(spool.counts.values()) == 0
    assert client.stats.requests == 1  # no refetch, no retry
    assert not captured.messages


def test_stable_repeats_across_pages_are_accepted_after_one_refetch(simulator: Simulator, tmp_path: Path) -> None:
    simulator.configure(invoices_per_day=23, page_size=10, page_repeats=True)
    client, captured = make_client(simulator, window_refetch_waits=(0.01, 0.01, 0.01))
    spool = fetch_range(client, DAY, DAY, tmp_path)
    keys = [record["primaryKey"] for record in spool.records(DAY)]
    assert len(set(keys)) == 23 and len(keys) == 25  # two repeats, nothing missing
    assert client.stats.repeats == 2
    assert client.stats.requests == 2 * 3  # the window once, then once more to confirm the repeats
    assert any("accepted" in message for message in captured.messages)


def test_repeats_that_change_between_fetches_fail_the_window_quickly(simulator: Simulator, tmp_path: Path) -> None:
    from fullbay_dagster.fullbay.errors import FullbayInconsistentWindowError

    simulator.configure(invoices_per_day=30, page_size=10)
    # Each fetch of the window sees one "shift" (a repeat in place of a missing invoice)
    # on a different page: the pages never come back the same.
    simulator.queue_faults(None, None, "shift", None, "shift", None, "shift", None, None, None, "shift", None)
    # one page at a time: the queued faults land on the pages named above, in order
    client, _ = make_client(simulator, window_refetch_waits=(0.01, 0.01, 0.01), max_in_flight=1)
    with pytest.raises(FullbayInconsistentWindowError, match="stayed inconsistent after 4 fetches"):
        fetch_range(client, DAY, DAY, tmp_path)
    assert client.stats.repeats == 0


def test_envelope_of_an_empty_window_is_normalised() -> None:
    body = {"status": "SUCCESS", "totalCount": 0, "totalPages": 1}
    FullbayClient._check_envelope("x", body, 1)
    assert (body["resultSet"], body["totalPages"]) == ([], 0)


def test_once_a_window_has_failed_no_other_window_is_started(simulator: Simulator, tmp_path: Path) -> None:
    """The step fails with the first failed window: a worker that starts the next one
    only spends another retry budget on a failing API before Dagster retries the step."""
    simulator.configure(fault_rate=1.0, fault_kinds=["503"])
    client, _ = make_client(simulator, window_days=1, max_in_flight=1, max_attempts=2, max_interval=0.05)
    with pytest.raises(FullbayGaveUpError):
        fetch_range(client, DAY, DAY + timedelta(days=2), tmp_path)
    assert len(simulator.requests()) == 2  # the first day's two attempts, nothing after
