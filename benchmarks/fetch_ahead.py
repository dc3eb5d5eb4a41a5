"""What fetching pages ahead buys when Fullbay is slow to answer: one window (the
daily run's usual case) fetched into a spool, pages one at a time vs up to
``max_in_flight`` (2) ahead, against the simulator with a fixed latency per call.

    python -m benchmarks.fetch_ahead --days 3 --per-day 500 --latency 0.1

The end-to-end benchmark cannot show this: its simulator answers in about a
millisecond, so there the run is bound by CPU, not by waiting on the API.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.common import BENCH_KEY, simulator_process
from benchmarks.e2e import AS_OF
from fullbay_dagster.fullbay import client as client_module
from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.spool import fetch_range


def timed_fetch(sim_url: str, first: date, last: date, ahead: bool) -> tuple[float, int, int]:
    """Seconds, requests and invoices of one fetch_range; ``ahead`` False reads one page at a time."""
    config = FullbayClientConfig(api_key=BENCH_KEY, base_url=sim_url, public_ip="127.0.0.1", max_in_flight=2)
    client = FullbayClient(config)
    original = client_module._PagesAhead._top_up
    if not ahead:
        client_module._PagesAhead._top_up = lambda self, reading: None  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as spool_dir:
            started = time.perf_counter()
            spool = fetch_range(client, first, last, Path(spool_dir))
            return time.perf_counter() - started, client.stats.requests, sum(spool.counts.values())
    finally:
        client_module._PagesAhead._top_up = original  # type: ignore[method-assign]
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    first = date(2025, 3, 1)
    last = first + timedelta(days=args.days - 1)
    with simulator_process(
        invoices_per_day=args.per_day, page_size=100, as_of=AS_OF, latency=args.latency, cache_size=256
    ) as sim_url:
        timed_fetch(sim_url, first, last, ahead=True)  # renders and caches every page
        for _ in range(args.repeats):
            for ahead in (False, True):
                seconds, requests, invoices = timed_fetch(sim_url, first, last, ahead)
                label = "pages ahead (2 in flight)" if ahead else "one page at a time"
                print(f"{label}: {seconds:.2f} s, {requests} requests, {invoices} invoices", flush=True)


if __name__ == "__main__":
    main()
