"""The dlt side of the end-to-end comparison, written the way dlt's docs suggest.

Runs in its own virtualenv (``benchmarks/e2e.py`` creates it): dlt is never a
dependency of the project. It imports nothing from the project, so the token
(SHA-1 of key + today + ip, Fullbay's rule) is computed here too.

    python benchmarks/dlt_pipeline.py --base-url URL --key KEY --ip 127.0.0.1 \
        --start 2025-03-01 --end 2025-03-14 --database-url postgresql://... --pipelines-dir DIR

Prints one JSON line: rows loaded per table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

WINDOW_DAYS = 7  # Fullbay answers at most seven days per request


def windows(start: date, end: date) -> Iterator[tuple[date, date]]:
    while start <= end:
        last = min(end, start + timedelta(days=WINDOW_DAYS - 1))
        yield start, last
        start = last + timedelta(days=1)


def fullbay_invoices(base_url: str, key: str, ip: str, start: date, end: date) -> Any:
    client = RESTClient(
        base_url=base_url,
        # Fullbay's envelope: currentPage / totalPages / resultSet, pages from 1.
        paginator=PageNumberPaginator(base_page=1, page_param="page", total_path="totalPages"),
        data_selector="resultSet",
    )

    @dlt.resource(name="invoices", write_disposition="merge", primary_key="primaryKey")
    def invoices() -> Iterator[Any]:
        today = datetime.now(UTC).date().isoformat()
        token = hashlib.sha1(f"{key}{today}{ip}".encode()).hexdigest()
        for first, last in windows(start, end):
            params = {"key": key, "token": token, "startDate": first.isoformat(), "endDate": last.isoformat()}
            yield from client.paginate("getInvoices.php", params=params)

    return invoices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ip", required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()
    pipeline = dlt.pipeline(
        pipeline_name="fullbay_bench",
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.postgres(credentials=args.database_url),
        dataset_name="fullbay",
    )
    info = pipeline.run(fullbay_invoices(args.base_url, args.key, args.ip, args.start, args.end))
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace.last_normalize_info else {}
    print(json.dumps({"row_counts": dict(counts)}))


if __name__ == "__main__":
    main()
