"""Fetch and load chosen endpoints over a date range: the one path every endpoint
takes (windows, paging, retries and pacing in one shared client; spooling; one
transaction per day and table). Every endpoint, invoices included, lands through
``raw_landing`` and is built through ``typed_build``; ``targets`` says which tables.

An endpoint that Fullbay refuses for this key (some accounts see that) is
reported as refused and the others still load; if every chosen endpoint is
refused the credentials themselves are wrong, and that error is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from fullbay_dagster.fullbay.client import FullbayClient
from fullbay_dagster.fullbay.endpoints import Endpoint
from fullbay_dagster.fullbay.errors import FullbayAuthError
from fullbay_dagster.fullbay.spool import SpoolResult, fetch_windows
from fullbay_dagster.warehouse.day_load import LoadCounts
from fullbay_dagster.warehouse.raw_landing import land_raw_day
from fullbay_dagster.warehouse.typed_build import build_day


@dataclass
class EndpointResult:
    endpoint: str
    raw: dict[date, LoadCounts] = field(default_factory=dict)
    typed: dict[date, LoadCounts] = field(default_factory=dict)
    api_counts: dict[date, int] = field(default_factory=dict)  # what the API returned per day
    refused: str | None = None  # why Fullbay refused the endpoint for this key


def sync_endpoint(
    engine: Engine,
    client: FullbayClient,
    endpoint: Endpoint,
    start: date,
    end: date,
    directory: Path,
    *,
    run_id: str | None = None,
    zone: ZoneInfo | None = None,
) -> EndpointResult:
    """Fetch ``start..end`` of ``endpoint`` and load each day as soon as its window is spooled."""
    result = EndpointResult(endpoint.name)
    folder = directory / endpoint.name
    folder.mkdir(parents=True, exist_ok=True)
    spool = SpoolResult(folder)
    for days in fetch_windows(client, start, end, spool, endpoint):
        for day in days:
            result.raw[day] = land_raw_day(
                engine, endpoint, day, spool.checked(day), run_id=run_id, fetched_at=spool.fetched_at_of(day)
            )
            result.typed[day] = build_day(
                engine, endpoint, day, zone=zone or ZoneInfo("UTC"), source="fullbay_api", run_id=run_id
            )
            spool.path(day).unlink(missing_ok=True)
    result.api_counts = dict(spool.counts)
    return result


def sync_endpoints(
    engine: Engine,
    client: FullbayClient,
    endpoints: list[Endpoint],
    start: date,
    end: date,
    directory: Path,
    *,
    run_id: str | None = None,
    zone: ZoneInfo | None = None,
) -> dict[str, EndpointResult]:
    """Every chosen endpoint, one after the other through the same client (one pool)."""
    results: dict[str, EndpointResult] = {}
    refusals: list[FullbayAuthError] = []
    for endpoint in endpoints:
        try:
            results[endpoint.name] = sync_endpoint(
                engine, client, endpoint, start, end, directory, run_id=run_id, zone=zone
            )
        except FullbayAuthError as exc:
            refusals.append(exc)
            message = (
                f"{endpoint.php} was refused for this key ({exc}). The other endpoints still load; "
                f"ask Fullbay to enable it, or leave {endpoint.name} out of FULLBAY_ENDPOINTS."
            )
            client.log.warning(message)
            results[endpoint.name] = EndpointResult(endpoint.name, refused=message)
    if endpoints and len(refusals) == len(endpoints):
        raise refusals[0]
    return results
