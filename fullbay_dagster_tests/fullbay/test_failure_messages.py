"""Failures that name what to fix: a wrong FULLBAY_API_BASE_URL and a full spool disk.

Real servers only: a closed local port, a local HTTP server answering a web page,
the simulator at a wrong path, and a child process whose file-size limit is low.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from fullbay_dagster.fullbay.client import DEFAULT_BASE_URL, FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.errors import (
    FullbayAuthError,
    FullbayEndpointError,
    FullbayGaveUpError,
    FullbayPermanentError,
    FullbayTransientError,
)
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster_tests.conftest import TEST_KEY
from fullbay_dagster_tests.static_http import Answer, serving

DAY = date(2025, 3, 12)


def _client(base_url: str, **overrides: object) -> FullbayClient:
    # The default retry budget (6 attempts): the point is that it is not spent.
    settings: dict[str, object] = {"api_key": TEST_KEY, "base_url": base_url, "public_ip": "127.0.0.1"}
    settings.update(overrides)
    return FullbayClient(FullbayClientConfig(**settings))  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _WebPage:
    hits: list[str] = []
    status = 200
    body = b"<!DOCTYPE html><html><body><h1>Welcome to our site</h1></body></html>"

    @classmethod
    def answer(cls, path: str) -> Answer:
        cls.hits.append(path)
        return cls.status, "text/html; charset=UTF-8", cls.body


@pytest.fixture()
def web_page() -> Iterator[str]:
    """A real HTTP server that answers every request with a web page, as a site's front page does."""
    _WebPage.hits, _WebPage.status = [], 200
    with serving(_WebPage.answer) as url:
        yield f"{url}/services"


def test_an_unreachable_base_url_fails_after_one_confirming_try_naming_the_variable() -> None:
    client = _client(f"http://127.0.0.1:{_closed_port()}/services", backoff_initial=0.01)
    with pytest.raises(FullbayEndpointError) as raised:
        list(client.iter_invoices(DAY, DAY))
    message = str(raised.value)
    assert message.startswith("FULLBAY_API_BASE_URL (http://127.0.0.1:")
    assert "cannot be reached" in message and "cannot connect" in message
    assert client.stats.requests == 2  # not max_attempts (6) times, then step retries
    assert TEST_KEY not in message


def test_a_base_url_that_answers_a_web_page_fails_after_one_confirming_try(web_page: str) -> None:
    client = _client(web_page, backoff_initial=0.01)
    with pytest.raises(FullbayEndpointError) as raised:
        list(client.iter_invoices(DAY, DAY))
    message = str(raised.value)
    assert f"FULLBAY_API_BASE_URL ({web_page})" in message
    assert "does not answer like the Fullbay API" in message and "text/html" in message
    assert len(_WebPage.hits) == 2
    assert TEST_KEY not in message and "token=" not in message


def test_a_base_url_where_the_endpoint_is_not_found_fails_on_the_first_404(web_page: str) -> None:
    _WebPage.status = 404
    client = _client(web_page)
    with pytest.raises(FullbayEndpointError, match=r"FULLBAY_API_BASE_URL \(.*\) does not answer.*404"):
        list(client.iter_invoices(DAY, DAY))
    assert len(_WebPage.hits) == 1


def test_web_pages_after_the_api_has_answered_are_transient_faults(simulator: Simulator) -> None:
    client = _client(simulator.url, backoff_initial=0.01, min_interval=0.0)
    assert client.fetch_page(DAY, DAY, 1)["status"] == "SUCCESS"
    simulator.queue_faults("html", "html", "html")
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert client.stats.retries == 3


_SPOOL_CHILD = """
import json, resource, sys
from datetime import date
from pathlib import Path
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.spool import SpoolDiskFullError, fetch_range

base_url, key, spool_dir = sys.argv[1:4]
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that holds 4 KiB per file
client = FullbayClient(FullbayClientConfig(api_key=key, base_url=base_url, public_ip="127.0.0.1", min_interval=0))
try:
    fetch_range(client, date(2025, 3, 10), date(2025, 3, 12), Path(spool_dir))
except SpoolDiskFullError as exc:
    print(json.dumps({"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}))
"""


def test_a_full_spool_disk_names_the_spool_and_tmpdir(simulator: Simulator, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    child = subprocess.run(
        [sys.executable, "-c", _SPOOL_CHILD, simulator.url, TEST_KEY, str(spool_dir)],
        env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    assert outcome["errno"] == 27  # EFBIG: "File too large", as a real full filesystem says ENOSPC
    message = outcome["message"]
    assert "File too large" in message
    assert f"Cannot write the spool in {spool_dir}" in message
    assert f"TMPDIR={tmp_path}" in message and "set TMPDIR to a larger disk" in message


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (500, "Invalid token or IP address not authorized", FullbayAuthError),
        (400, "Date range cannot exceed 7 days", FullbayPermanentError),
        # Wording neither pattern knows: the 4xx status says what it is.
        (401, "Invalid credentials", FullbayAuthError),
        (403, "Forbidden", FullbayAuthError),
        (400, "Bad request: invalid value", FullbayPermanentError),
    ],
)
def test_a_fail_body_is_judged_by_its_message_whatever_the_http_status(
    status: int, message: str, error: type[Exception]
) -> None:
    """Fullbay's HTTP status for a FAIL is undocumented: the body says what went wrong."""
    hits: list[str] = []

    def fail(path: str) -> Answer:
        hits.append(path)
        return status, "application/json", json.dumps({"status": "FAIL", "message": message}).encode()

    with serving(fail) as url, pytest.raises(error) as caught:
        list(_client(f"{url}/services", backoff_initial=0.01).iter_invoices(DAY, DAY))
    assert message in str(caught.value) and f"HTTP {status}" in str(caught.value)
    assert len(hits) == 1  # neither retried nor lost


def test_a_fail_body_it_does_not_know_with_a_5xx_is_retried() -> None:
    hits: list[str] = []

    def busy(path: str) -> Answer:
        hits.append(path)
        return 503, "application/json", json.dumps({"status": "FAIL", "message": "Please try later"}).encode()

    with serving(busy) as url, pytest.raises(FullbayGaveUpError, match=r"Please try later \(HTTP 503\)"):
        list(_client(f"{url}/services", max_attempts=2, backoff_initial=0.01).iter_invoices(DAY, DAY))
    assert len(hits) == 2


def test_a_web_page_or_an_outage_at_fullbays_own_address_is_transient() -> None:
    """At its default address a maintenance page or a dropped connection is Fullbay's
    outage, retried with backoff; the fail-fast above is for an address set by hand."""
    client = _client(DEFAULT_BASE_URL)
    for detail, reachable in [("HTTP 200 with a body that is not valid JSON (text/html)", True), ("refused", False)]:
        for _ in range(3):
            assert (
                type(client._endpoint_trouble("getInvoices.php", detail, reachable=reachable)) is FullbayTransientError
            )


@pytest.mark.parametrize(("status", "error", "tries"), [(200, FullbayGaveUpError, 2), (404, FullbayPermanentError, 1)])
def test_an_account_that_answers_a_quiet_window_with_fail_can_say_so(
    status: int, error: type[Exception], tries: int
) -> None:
    """FULLBAY_EMPTY_FAIL_PATTERN: off, the FAIL fails the run (retried first when its
    status does not say it is permanent): no day is ever read as empty by guess. Set,
    the window has no records."""
    hits: list[str] = []

    def quiet(path: str) -> Answer:
        hits.append(path)
        return status, "application/json", json.dumps({"status": "FAIL", "message": "No records found"}).encode()

    with serving(quiet) as url:
        with pytest.raises(error, match="No records found"):
            list(_client(f"{url}/services", max_attempts=2, backoff_initial=0.01).iter_invoices(DAY, DAY))
        assert len(hits) == tries
        client = _client(f"{url}/services", empty_fail_pattern="(?i)no records found")
        assert list(client.iter_invoices(DAY, DAY)) == []
    assert len(hits) == tries + 1
