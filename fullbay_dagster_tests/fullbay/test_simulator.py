"""Contract tests: the simulator, spoken to over real HTTP, behaves like the API doc says.

The client and the assets are tested against this simulator, so these tests pin
the behaviour they rely on: auth, the 7-day window, paging, determinism, the type
quirks, internally consistent money, as_of-driven changes, and each fault kind as
a client actually experiences it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from fullbay_dagster.fullbay.auth import make_token, today_in
from fullbay_dagster.fullbay.simulator import Simulator, SimulatorConfig
from fullbay_dagster.fullbay.synthetic import invoices_for_day

KEY = "test-key-5f0c"
IP = "127.0.0.1"
DAY = date(2025, 3, 10)
AS_OF = date(2025, 3, 20)
ENVELOPE = {
    "status",
    "startRecordNumber",
    "endRecordNumber",
    "resultCount",
    "totalCount",
    "pageSize",
    "currentPage",
    "totalPages",
    "resultSet",
}

MakeSim = Callable[..., Simulator]


def token(ip: str = IP, key: str = KEY, timezone: str = "UTC") -> str:
    return make_token(key, today_in(timezone), ip)


def get(
    sim: Simulator,
    start: date | str | None = DAY,
    end: date | str | None = DAY,
    page: int | str | None = None,
    *,
    key: str | None = KEY,
    tok: str | None = None,
    path: str = "/getInvoices.php",
    timeout: float = 10,
) -> requests.Response:
    params: dict[str, Any] = {"key": key, "token": tok if tok is not None else token()}
    params["startDate"] = start.isoformat() if isinstance(start, date) else start
    params["endDate"] = end.isoformat() if isinstance(end, date) else end
    params["page"] = page
    params = {k: v for k, v in params.items() if v is not None}
    return requests.get(sim.url + path, params=params, timeout=timeout)


def fetch_all(sim: Simulator, start: date, end: date) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        body = get(sim, start, end, page).json()
        assert body["status"] == "SUCCESS", body
        records.extend(body["resultSet"])
        if page >= body["totalPages"]:
            return records
        page += 1


def without_balance(invoice: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in invoice.items() if k != "balance"}


def dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    started: list[Simulator] = []

    def make(**changes: Any) -> Simulator:
        settings: dict[str, Any] = {"api_key": KEY, "as_of": AS_OF, "invoices_per_day": 25, "page_size": 20}
        sim = Simulator(SimulatorConfig(**{**settings, **changes})).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: MakeSim) -> Simulator:
    return make_sim()


# ------------------------------------------------------------------ auth


def test_valid_token_accepted(sim: Simulator) -> None:
    response = get(sim)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "SUCCESS"
    assert set(body) == ENVELOPE
    assert body["totalCount"] == 25


def test_url_has_services_prefix_and_any_prefix_works(sim: Simulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}/services"
    other = requests.get(
        f"http://127.0.0.1:{sim.port}/other/prefix/getInvoices.php",
        params={"key": KEY, "token": token(), "startDate": "2025-03-10", "endDate": "2025-03-10"},
        timeout=10,
    )
    assert other.json()["status"] == "SUCCESS"
    assert requests.get(sim.url + "/getNothing.php", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("key", "tok", "message"),
    [
        (KEY, "0" * 40, "Invalid token or IP address not authorized"),
        (KEY, "", "Invalid token or IP address not authorized"),
        ("wrong-key", None, "Invalid API key"),
        (None, None, "Invalid API key"),
    ],
)
def test_bad_credentials_fail_with_http_200(sim: Simulator, key: str | None, tok: str | None, message: str) -> None:
    tok = tok if tok is not None else token(key=key or KEY)
    response = get(sim, key=key, tok=tok)
    assert response.status_code == 200
    assert response.json()["status"] == "FAIL"
    assert message in response.json()["message"]


def test_token_from_yesterday_rejected(sim: Simulator) -> None:
    stale = make_token(KEY, today_in("UTC") - timedelta(days=1), IP)
    assert get(sim, tok=stale).json() == {"status": "FAIL", "message": "Invalid token or IP address not authorized"}


def test_expected_ip_binds_token(make_sim: MakeSim) -> None:
    sim = make_sim(expected_ip="203.0.113.7")
    assert get(sim, tok=token(ip=IP)).json()["message"] == "Invalid token or IP address not authorized"
    assert get(sim, tok=token(ip="203.0.113.7")).json()["status"] == "SUCCESS"


def test_token_timezone_configurable(make_sim: MakeSim) -> None:
    sim = make_sim(token_timezone="Pacific/Kiritimati")
    assert get(sim, tok=token(timezone="Pacific/Kiritimati")).json()["status"] == "SUCCESS"


# ------------------------------------------------------------------ dates and window


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (None, "2025-03-10", "Invalid date"),
        ("2025-03-10", None, "Invalid date"),
        ("2025-3-10", "2025-03-10", "Invalid date"),
        ("2025-02-30", "2025-03-01", "Invalid date"),
        ("yesterday", "2025-03-10", "Invalid date"),
        ("2025-03-10", "2025-03-09", "Invalid date range"),
        ("2025-03-01", "2025-03-08", "Date range cannot exceed 7 days"),
    ],
)
def test_date_validation(sim: Simulator, start: str | None, end: str | None, message: str) -> None:
    body = get(sim, start, end).json()
    assert body == {"status": "FAIL", "message": message}


def test_seven_day_window_ok_eight_fails(sim: Simulator) -> None:
    seven = get(sim, date(2025, 3, 1), date(2025, 3, 7)).json()
    assert seven["status"] == "SUCCESS"
    assert seven["totalCount"] == 7 * 25
    assert get(sim, date(2025, 3, 1), date(2025, 3, 8)).json()["message"] == "Date range cannot exceed 7 days"


# ------------------------------------------------------------------ paging


def test_paging_envelope_and_records(sim: Simulator) -> None:
    start, end = date(2025, 3, 1), date(2025, 3, 3)
    pages = [get(sim, start, end, page).json() for page in range(1, 5)]
    for number, page in enumerate(pages, start=1):
        assert set(page) == ENVELOPE
        assert page["status"] == "SUCCESS"
        assert page["totalCount"] == 75
        assert page["totalPages"] == 4
        assert page["pageSize"] == 20
        assert page["currentPage"] == number
        expected = 15 if number == 4 else 20
        assert page["resultCount"] == len(page["resultSet"]) == expected
        assert page["startRecordNumber"] == (number - 1) * 20 + 1
        assert page["endRecordNumber"] == (number - 1) * 20 + expected
    records = [r for page in pages for r in page["resultSet"]]
    expected_records = [inv for n in range(3) for inv in invoices_for_day(1, start + timedelta(days=n), 25, AS_OF)]
    assert records == expected_records
    keys = [r["primaryKey"] for r in records]
    assert len(set(keys)) == len(keys) == 75
    assert [r["invoiceDate"] for r in records] == sorted(r["invoiceDate"] for r in records)


def test_page_defaults_to_one_and_bad_pages_fail(sim: Simulator) -> None:
    assert get(sim).json()["currentPage"] == 1
    assert get(sim, page=3).json() == {"status": "FAIL", "message": "Invalid page"}
    assert get(sim, page="x").json()["message"] == "Invalid page"
    assert get(sim, page=0).json()["message"] == "Invalid page"


def test_empty_window(make_sim: MakeSim) -> None:
    sim = make_sim(invoices_per_day=0)
    body = get(sim, page=2).json()
    assert body == {
        "status": "SUCCESS",
        "startRecordNumber": 0,
        "endRecordNumber": 0,
        "resultCount": 0,
        "totalCount": 0,
        "pageSize": 20,
        "currentPage": 2,
        "totalPages": 0,
        "resultSet": [],
    }


def test_days_after_as_of_have_no_invoices(sim: Simulator) -> None:
    sim.set_as_of(date(2025, 3, 11))
    assert get(sim, date(2025, 3, 10), date(2025, 3, 13)).json()["totalCount"] == 50
    assert get(sim, date(2025, 3, 12), date(2025, 3, 13)).json()["totalCount"] == 0


# ------------------------------------------------------------------ data


def test_deterministic_per_seed(make_sim: MakeSim) -> None:
    first, second, other = make_sim(seed=5), make_sim(seed=5), make_sim(seed=6)
    a, b, c = (get(s, date(2025, 3, 1), date(2025, 3, 2), 2).content for s in (first, second, other))
    assert a == b
    assert a != c
    assert json.loads(a)["resultSet"][0]["primaryKey"] == json.loads(c)["resultSet"][0]["primaryKey"]


def _walk_ids(invoice: dict[str, Any]) -> Iterator[str]:
    order = invoice["ServiceOrder"]
    yield invoice["primaryKey"]
    yield order["primaryKey"]
    yield from (m["primaryKey"] for m in order["MiscCharges"])
    for complaint in order["Complaints"]:
        yield str(complaint["primaryKey"])
        yield from (t["primaryKey"] for t in complaint["AssignedTechnicians"])
        for correction in complaint["Corrections"]:
            yield correction["primaryKey"]
            yield from (p["primaryKey"] for p in correction["Parts"])


def test_type_quirks(sim: Simulator) -> None:
    records = fetch_all(sim, date(2025, 3, 1), date(2025, 3, 4))
    digits = str.isdigit
    seen_empty: set[object] = set()
    shops = set()
    for inv in records:
        order = inv["ServiceOrder"]
        shops.add(inv["shopTitle"])
        assert isinstance(inv["primaryKey"], str) and digits(inv["primaryKey"])
        assert isinstance(order["primaryKey"], str) and digits(order["primaryKey"])
        assert inv["primaryKey"] != order["primaryKey"]
        assert inv["invoiceNumber"] != order["repairOrderNumber"]
        assert isinstance(inv["Customer"]["customerId"], int)
        assert isinstance(order["Customer"]["customerId"], int)
        assert isinstance(order["Unit"]["customerUnitId"], str)
        assert isinstance(order["Unit"]["year"], str) and len(order["Unit"]["year"]) == 4
        assert isinstance(inv["taxRate"], str)
        assert isinstance(inv["TaxInformation"]["taxRate"], str)
        assert all(isinstance(line["taxTotal"], str) for line in inv["TaxInformation"]["TaxLineInformation"])
        assert inv["exported"] in ("0", "1")
        assert inv["invoiceDate"] >= "2025-03-01"
        assert inv["created"].startswith(inv["invoiceDate"])
        time.strptime(inv["created"], "%Y-%m-%d %H:%M:%S")
        time.strptime(order["created"], "%Y-%m-%d %H:%M:%S")
        assert order["created"] <= inv["created"]
        assert "status" not in inv
        assert 0 <= len(order["MiscCharges"]) <= 2
        for misc in order["MiscCharges"]:
            assert set(misc) == {
                "primaryKey", "description", "quantity", "rate", "amount", "taxable",
                "quickBooksItem", "quickBooksItemType",
            }  # fmt: skip
            assert isinstance(misc["amount"], str) and isinstance(misc["primaryKey"], str)
            assert isinstance(misc["quantity"], int) and isinstance(misc["rate"], (int, float))
            assert misc["taxable"] in ("Yes", "No")
        for field in ("hot", "unscheduled", "preAuthorized", "unitReturnAsap"):
            assert order[field] in ("Yes", "No")
        for value in (inv["Customer"]["externalId"], inv["Customer"]["secondaryPhone"], order["poNumber"]):
            if value in ("", None):
                seen_empty.add(value)
        for complaint in order["Complaints"]:
            assert isinstance(complaint["primaryKey"], int)
            assert 1 <= len(complaint["Corrections"]) <= 3
            techs = complaint["AssignedTechnicians"]
            assert 1 <= len(techs) <= 2
            assert sum(t["portion"] for t in techs) == 100
            assert all(isinstance(t["primaryKey"], str) and digits(t["primaryKey"]) for t in techs)
            for correction in complaint["Corrections"]:
                assert isinstance(correction["primaryKey"], str) and digits(correction["primaryKey"])
                assert correction["taxable"] in ("Yes", "No")
                assert len(correction["Parts"]) <= 4
                for part in correction["Parts"]:
                    assert isinstance(part["primaryKey"], str) and digits(part["primaryKey"])
                    assert isinstance(part["quantity"], (int, float))
                    assert part["taxable"] in ("Yes", "No")
    assert seen_empty == {"", None}, "empty values should appear both as '' and null"
    assert len(shops) > 1 and all(" Diesel - " in s for s in shops)
    customers = {inv["Customer"]["customerId"] for inv in records}
    assert 10 < len(customers) <= 50
    ids = [i for inv in records for i in _walk_ids(inv)]
    assert len(ids) == len(set(ids)), "ids must be unique across the dataset"


def test_money_is_consistent(sim: Simulator) -> None:
    records = fetch_all(sim, date(2025, 3, 1), date(2025, 3, 3))
    fractional = 0
    for inv in records:
        order = inv["ServiceOrder"]
        parts_sum = labor_sum = hours_sum = Decimal(0)
        for complaint in order["Complaints"]:
            c_parts = c_labor = c_hours = Decimal(0)
            for correction in complaint["Corrections"]:
                lines = cost_lines = Decimal(0)
                for part in correction["Parts"]:
                    qty = dec(part["quantity"])
                    fractional += qty != qty.to_integral_value()
                    lines += (qty * dec(part["sellingPrice"])).quantize(Decimal("0.01"), "ROUND_HALF_UP")
                    cost_lines += (qty * dec(part["cost"])).quantize(Decimal("0.01"), "ROUND_HALF_UP")
                assert dec(correction["partsTotal"]) == lines
                assert dec(correction["partsCostTotal"]) == cost_lines
                # laborRate is the rate's *name* (as in the real response); the amount is one of the shop's rates
                assert isinstance(correction["laborRate"], str) and correction["laborRate"]
                hours, labor = dec(correction["laborHoursTotal"]), dec(correction["laborTotal"])
                assert hours > 0 and labor / hours in {125, 135, 145, 150, 165, 175}
                c_parts += lines
                c_labor += labor
                c_hours += dec(correction["laborHoursTotal"])
            assert dec(complaint["partsTotal"]) == c_parts
            assert dec(complaint["laborTotal"]) == c_labor
            assert dec(complaint["laborHoursTotal"]) == c_hours
            assert complaint["actualHoursTotal"] == sum(t["actualHours"] for t in complaint["AssignedTechnicians"])
            parts_sum += c_parts
            labor_sum += c_labor
            hours_sum += c_hours
        misc = sum((Decimal(m["amount"]) for m in order["MiscCharges"]), Decimal(0))
        assert dec(inv["partsTotal"]) == parts_sum == dec(order["partsTotal"])
        assert dec(inv["laborTotal"]) == labor_sum == dec(order["laborTotal"])
        assert dec(inv["laborHoursTotal"]) == hours_sum
        assert dec(inv["miscChargeTotal"]) == misc
        sub = parts_sum + labor_sum + misc + dec(inv["suppliesTotal"])
        assert dec(inv["subTotal"]) == sub
        tax = (sub * Decimal(inv["taxRate"]) / 100).quantize(Decimal("0.01"), "ROUND_HALF_UP")
        assert dec(inv["taxTotal"]) == tax == dec(inv["TaxInformation"]["taxTotal"])
        assert sum(Decimal(line["taxTotal"]) for line in inv["TaxInformation"]["TaxLineInformation"]) == tax
        assert dec(inv["total"]) == sub + tax
        assert Decimal(0) <= dec(inv["balance"]) <= dec(inv["total"])
    assert fractional > 0, "some part quantities should be fractional"


def test_later_as_of_changes_only_balances(sim: Simulator) -> None:
    sim.set_as_of(DAY)
    before = fetch_all(sim, DAY, DAY)
    sim.set_as_of(DAY + timedelta(days=40))
    after = fetch_all(sim, DAY, DAY)
    assert len(before) == len(after) == 25
    assert [without_balance(i) for i in before] == [without_balance(i) for i in after]
    changed = [a for b, a in zip(before, after, strict=True) if a["balance"] != b["balance"]]
    assert 0 < len(changed) <= 25
    assert any(a["balance"] == 0.0 for a in changed)


def test_balances_move_through_partial_payment() -> None:
    history: dict[str, set[float]] = {}
    for offset in range(0, 40, 2):
        for inv in invoices_for_day(1, DAY, 25, DAY + timedelta(days=offset)):
            history.setdefault(inv["primaryKey"], set()).add(inv["balance"])
    assert any(len(values) == 3 for values in history.values()), "some invoices should be partly paid before paid"


def test_void_rate_removes_invoices_after_three_days(make_sim: MakeSim) -> None:
    sim = make_sim(void_rate=0.3, as_of=DAY + timedelta(days=2))
    fresh = fetch_all(sim, DAY, DAY)
    assert len(fresh) == 25
    sim.set_as_of(DAY + timedelta(days=3))
    later = fetch_all(sim, DAY, DAY)
    assert 0 < len(later) < 25
    by_key = {inv["primaryKey"]: without_balance(inv) for inv in fresh}
    assert all(by_key[inv["primaryKey"]] == without_balance(inv) for inv in later)
    sim.configure(void_rate=0.0)
    assert len(fetch_all(sim, DAY, DAY)) == 25


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "retry_after"),
    [("429", "3"), ("429-no-retry-after", None), ("429-huge", "86400")],
)
def test_fault_429(make_sim: MakeSim, kind: str, retry_after: str | None) -> None:
    sim = make_sim(retry_after=3)
    sim.queue_faults(kind)
    response = get(sim)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == retry_after
    assert get(sim).json()["status"] == "SUCCESS", "a queued fault applies to one request only"


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_fault_5xx(sim: Simulator, kind: str) -> None:
    sim.queue_faults(kind)
    response = get(sim)
    assert response.status_code == int(kind)
    with pytest.raises(ValueError):
        response.json()


def test_fault_reset(sim: Simulator) -> None:
    sim.queue_faults("reset")
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        get(sim)
    assert get(sim).json()["status"] == "SUCCESS"


def test_fault_malformed(sim: Simulator) -> None:
    sim.queue_faults("malformed")
    response = get(sim)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["Content-Length"])
    assert response.content.startswith(b'{"status":"SUCCESS"')
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_fault_html(sim: Simulator) -> None:
    sim.queue_faults("html")
    response = get(sim)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().startswith("<")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


@pytest.mark.parametrize(
    ("kind", "message"),
    [("fail", "Service temporarily unavailable"), ("fail-auth", "Invalid token or IP address not authorized")],
)
def test_fault_fail_bodies(sim: Simulator, kind: str, message: str) -> None:
    sim.queue_faults(kind)
    response = get(sim)
    assert response.status_code == 200
    assert response.json() == {"status": "FAIL", "message": message}


def test_fault_timeout(make_sim: MakeSim) -> None:
    sim = make_sim(slow_seconds=0.6)
    sim.queue_faults("timeout", "timeout")
    with pytest.raises(requests.exceptions.Timeout):
        get(sim, timeout=0.2)
    began = time.monotonic()
    assert get(sim, timeout=5).json()["status"] == "SUCCESS"
    assert time.monotonic() - began >= 0.6


def test_queued_faults_are_fifo_and_logged(sim: Simulator) -> None:
    sim.queue_faults("503", "fail", "429")
    statuses = [get(sim).status_code for _ in range(4)]
    assert statuses == [503, 200, 429, 200]
    assert [(r["fault"], r["status"]) for r in sim.requests()] == [
        ("503", 503),
        ("fail", 200),
        ("429", 429),
        (None, 200),
    ]


def test_unknown_fault_kind_rejected(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.queue_faults("teapot")


def test_random_faults_deterministic_for_seed(make_sim: MakeSim) -> None:
    kinds = ("429", "500", "fail", "html", "malformed")

    def sequence(seed: int) -> list[str | None]:
        sim = make_sim(fault_rate=0.5, fault_seed=seed, fault_kinds=kinds, retry_after=0)
        for _ in range(16):
            get(sim)
        return [r["fault"] for r in sim.requests()]

    first, second, other = sequence(7), sequence(7), sequence(8)
    assert first == second
    assert first != other
    assert None in first and len({f for f in first if f}) > 1


def test_latency(make_sim: MakeSim) -> None:
    sim = make_sim(latency=0.3)
    began = time.monotonic()
    get(sim)
    assert time.monotonic() - began >= 0.3


# ------------------------------------------------------------------ admin and log


def test_admin_endpoints(sim: Simulator) -> None:
    admin = f"http://127.0.0.1:{sim.port}/_sim"
    assert requests.post(f"{admin}/faults", json={"kinds": ["502"]}, timeout=5).json() == {"queued": 1}
    assert get(sim).status_code == 502
    config = requests.post(
        f"{admin}/config",
        json={"as_of": "2025-04-30", "invoices_per_day": 3, "latency": 0, "fault_rate": 0, "void_rate": 0},
        timeout=5,
    ).json()
    assert config["as_of"] == "2025-04-30"
    assert config["invoices_per_day"] == 3
    assert "api_key" not in config
    assert sim.config.as_of == date(2025, 4, 30)
    assert get(sim).json()["totalCount"] == 3
    log = requests.get(f"{admin}/requests", timeout=5).json()
    assert [entry["status"] for entry in log] == [502, 200]
    assert requests.post(f"{admin}/config", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.post(f"{admin}/faults", json={"kinds": ["nope"]}, timeout=5).status_code == 400
    requests.post(f"{admin}/faults", json={"kinds": ["500"]}, timeout=5)
    assert requests.post(f"{admin}/reset", timeout=5).json() == {"reset": True}
    assert requests.get(f"{admin}/requests", timeout=5).json() == []
    assert get(sim).status_code == 200, "reset also clears queued faults"


def test_request_log_and_log_lines_hold_no_secrets(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fullbay_dagster.fullbay.simulator")
    secret = token()
    get(sim, date(2025, 3, 1), date(2025, 3, 2), 2)
    get(sim, key="bad-key-zzz")
    sim.queue_faults("reset")
    with pytest.raises(requests.exceptions.RequestException):
        get(sim)
    log = sim.requests()
    first = dict(log[0])
    received, answered = first.pop("received_at"), first.pop("answered_at")
    assert received <= answered
    assert first == {
        "endpoint": "getInvoices.php",
        "startDate": "2025-03-01",
        "endDate": "2025-03-02",
        "page": 2,
        "fault": None,
        "status": 200,
        "ip": "127.0.0.1",
    }
    dumped = json.dumps(log) + caplog.text
    assert "getInvoices.php" in caplog.text
    for needle in (KEY, secret, "bad-key-zzz", "token="):
        assert needle not in dumped
    sim.clear_requests()
    assert sim.requests() == []


# ------------------------------------------------------------------ CLI


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fullbay_dagster.fullbay.simulator",
            "--port",
            "0",
            "--key",
            KEY,
            "--as-of",
            "2025-03-20",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("Fullbay simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        body = requests.get(
            url + "/getInvoices.php",
            params={"key": KEY, "token": token(), "startDate": "2025-03-10", "endDate": "2025-03-10"},
            timeout=10,
        ).json()
        assert body["totalCount"] == 40
        proc.terminate()
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_type_chaos_over_sim_config_is_reproducible_and_spares_identity(sim: Simulator) -> None:
    admin = f"http://127.0.0.1:{sim.port}/_sim"
    plain = fetch_all(sim, DAY, DAY)
    config = requests.post(f"{admin}/config", json={"type_chaos": 0.3}, timeout=5).json()
    assert config["type_chaos"] == 0.3
    first, again = fetch_all(sim, DAY, DAY), fetch_all(sim, DAY, DAY)
    assert first == again  # reproducible per seed
    assert [(r["primaryKey"], r["invoiceDate"]) for r in first] == [(r["primaryKey"], r["invoiceDate"]) for r in plain]
    assert first != plain
    kinds = {type(r[field]).__name__ for r in first for field in r if field not in ("primaryKey", "invoiceDate")}
    assert {"dict", "list", "bool", "str"} <= kinds
    assert requests.post(f"{admin}/config", json={"type_chaos": 2}, timeout=5).status_code == 400


@pytest.mark.parametrize("shape", ["pages0", "pages1", "absent"])
def test_empty_window_shapes(sim: Simulator, shape: str) -> None:
    sim.configure(invoices_per_day=0, empty_shape=shape)
    body = get(sim).json()
    assert (body["totalCount"], body["totalPages"]) == (0, 0 if shape == "pages0" else 1)
    assert ("resultSet" in body) == (shape != "absent")


def test_page_repeats_serve_each_later_page_with_the_previous_pages_last_invoice(sim: Simulator) -> None:
    sim.configure(invoices_per_day=23, page_size=10, page_repeats=True)
    pages = [get(sim, DAY, DAY, n).json() for n in (1, 2, 3)]
    assert [p["totalCount"] for p in pages] == [25, 25, 25] and pages[0]["totalPages"] == 3
    keys = [[r["primaryKey"] for r in p["resultSet"]] for p in pages]
    assert keys[1][0] == keys[0][-1] and keys[2][0] == keys[1][-1]
    assert len({k for page in keys for k in page}) == 23
