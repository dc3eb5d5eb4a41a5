"""Endpoint descriptions, selection, and all seven endpoints served by the simulator over HTTP."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.endpoints import ENDPOINTS, GENERIC_ENDPOINTS, INVOICES, Endpoint, selected_endpoints
from fullbay_dagster.fullbay.errors import FullbayAuthError
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster.fullbay.windows import date_windows
from fullbay_dagster_tests.conftest import TEST_KEY

AS_OF = date(2026, 3, 31)


def _client(simulator: Simulator) -> FullbayClient:
    config = FullbayClientConfig(
        api_key=TEST_KEY, base_url=simulator.url, public_ip="127.0.0.1", min_interval=0, backoff_initial=0.01
    )
    return FullbayClient(config)


def _all(client: FullbayClient, php: str, start: date, end: date, days: int = 7) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for first, last in date_windows(start, end, days):
        for page in client.iter_window_pages(first, last, endpoint=php):
            out.extend(page.records)
    return out


def test_selection_defaults_to_all_seven_and_names_unknown_endpoints() -> None:
    assert [e.php for e in selected_endpoints(env={})] == [
        "getInvoices.php",
        "getCustomerPayments.php",
        "getCustomerCredits.php",
        "getAdjustments.php",
        "getCounterSales.php",
        "getVendorBills.php",
        "getVendorCredits.php",
    ]
    chosen = selected_endpoints("invoices, getCustomerPayments.php,customer_payments", "", env={})
    assert [e.name for e in chosen] == ["invoices", "customer_payments"]
    with pytest.raises(ValueError, match=r"unknown endpoint 'getParts'.*known: invoices"):
        selected_endpoints("getParts", env={})
    with pytest.raises(ValueError, match="FULLBAY_DATE_FIELDS"):
        selected_endpoints("", "vendor_bills", env={})


def test_unknown_date_field_means_one_day_windows_until_confirmed() -> None:
    assert INVOICES.window_days == 7
    assert all(e.window_days == 1 and e.date_field is None for e in GENERIC_ENDPOINTS)
    env = {"FULLBAY_ENDPOINTS": "vendor_bills,adjustments", "FULLBAY_DATE_FIELDS": "getVendorBills=billDate"}
    bills, adjustments = selected_endpoints(env=env)
    assert (bills.date_field, bills.window_days) == ("billDate", 7)
    assert (adjustments.date_field, adjustments.window_days) == (None, 1)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS.values()), ids=list(ENDPOINTS))
def test_each_endpoint_spools_by_day_over_http(simulator: Simulator, tmp_path: Path, endpoint: Endpoint) -> None:
    simulator.configure(as_of=AS_OF, type_chaos=0.2)
    client = _client(simulator)
    start, end = AS_OF - timedelta(days=9), AS_OF
    spool = fetch_range(client, start, end, tmp_path, endpoint)
    windows = {(r["startDate"], r["endDate"]) for r in simulator.requests()}
    assert all(r["endpoint"] == endpoint.php for r in simulator.requests())
    expected = {(a.isoformat(), b.isoformat()) for a, b in date_windows(start, end, endpoint.window_days)}
    assert windows == expected
    assert sorted(spool.counts) == [start + timedelta(days=n) for n in range(10)]
    assert sum(spool.counts.values()) > 0
    for day in spool.counts:
        records = list(spool.records(day))
        assert len(records) == spool.counts[day]
        assert len({r["primaryKey"] for r in records}) == len(records)
        # the simulator dates each record; its day is the day the API returned it for
        field = endpoint.date_field or endpoint.date_candidates[0]
        assert {r[field] for r in records} <= {day.isoformat()}


def test_payments_refer_to_existing_invoices_and_explain_their_balances(simulator: Simulator) -> None:
    simulator.configure(as_of=AS_OF, page_size=200, void_rate=0.2)
    client = _client(simulator)
    invoices = {i["primaryKey"]: i for i in _all(client, "getInvoices.php", AS_OF - timedelta(days=60), AS_OF)}
    payments = _all(client, "getCustomerPayments.php", AS_OF - timedelta(days=20), AS_OF, days=1)
    assert payments
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        invoice = invoices[str(payment["invoicePrimaryKey"])]  # exists and is not voided
        assert payment["Customer"] == {
            "customerId": invoice["Customer"]["customerId"],  # type: ignore[index]
            "title": invoice["Customer"]["title"],  # type: ignore[index]
        }
        assert str(payment["paymentDate"]) >= str(invoice["invoiceDate"])
        paid[str(payment["invoicePrimaryKey"])] += Decimal(str(payment["amount"]))
    recent = [i for i in invoices.values() if str(i["invoiceDate"]) >= (AS_OF - timedelta(days=20)).isoformat()]
    assert any(paid[k] for k in (str(i["primaryKey"]) for i in recent))
    for invoice in recent:
        total, balance = Decimal(str(invoice["total"])), Decimal(str(invoice["balance"]))
        assert paid[str(invoice["primaryKey"])] == total - balance


def test_a_refused_endpoint_fails_alone(simulator: Simulator) -> None:
    simulator.configure(as_of=AS_OF, refused_endpoints=["getVendorBills.php"])
    client = _client(simulator)
    with pytest.raises(FullbayAuthError, match=r"getVendorBills\.php"):
        _all(client, "getVendorBills.php", AS_OF, AS_OF)
    assert _all(client, "getVendorCredits.php", AS_OF - timedelta(days=6), AS_OF)


@pytest.mark.parametrize("endpoint", GENERIC_ENDPOINTS, ids=[e.name for e in GENERIC_ENDPOINTS])
def test_faults_are_retried_the_same_way_on_every_endpoint(
    simulator: Simulator, tmp_path: Path, endpoint: Endpoint
) -> None:
    simulator.configure(as_of=AS_OF, retry_after=0)
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    clean = fetch_range(_client(simulator), AS_OF - timedelta(days=2), AS_OF, tmp_path / "clean", endpoint)
    simulator.clear_requests()
    simulator.queue_faults("500", "429", "fail", "malformed", None, "503")
    faulty = fetch_range(_client(simulator), AS_OF - timedelta(days=2), AS_OF, tmp_path / "faulty", endpoint)
    assert [r["fault"] for r in simulator.requests()][:4] == ["500", "429", "fail", "malformed"]
    assert faulty.counts == clean.counts
    for day in clean.counts:
        assert list(faulty.records(day)) == list(clean.records(day))
