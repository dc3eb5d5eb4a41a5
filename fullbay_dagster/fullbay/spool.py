"""Fetch a date range into per-day JSON-lines files on local disk.

Why spool: one request window covers up to seven days, but each day is loaded
in its own transaction; and the API can take minutes, which must not be spent
inside a database transaction. Files keep memory flat however large a day is.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from fullbay_dagster.fullbay.client import FullbayClient
from fullbay_dagster.fullbay.errors import FullbayError, FullbayTransientError
from fullbay_dagster.fullbay.jsonio import dump_record, parse_record
from fullbay_dagster.fullbay.windows import date_windows, days_in

WINDOW_ATTEMPTS = 3  # a window whose totals shift under us is fetched again from page 1


@dataclass
class SpoolResult:
    directory: Path
    # When fetching began: every record is at least this fresh (see loader.load_raw_day).
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    counts: dict[date, int] = field(default_factory=dict)

    def path(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.jsonl"

    def records(self, day: date) -> Iterator[dict[str, Any]]:
        with self.path(day).open("rb") as handle:
            for line in handle:
                yield parse_record(line)


def fetch_windows(client: FullbayClient, start: date, end: date, spool: SpoolResult) -> Iterator[list[date]]:
    """Fetch ``start..end`` window by window, up to ``max_in_flight`` windows at once,
    yielding each window's days as soon as they are spooled, so the caller can load
    them while later windows are still being fetched."""
    windows = list(date_windows(start, end, client.config.window_days))
    pool = ThreadPoolExecutor(max_workers=client.config.max_in_flight, thread_name_prefix="fullbay")
    try:
        futures = [pool.submit(_fetch_window, client, first, last, spool) for first, last in windows]
        for future in as_completed(futures):
            counts = future.result()
            spool.counts.update(counts)
            yield sorted(counts)
    finally:
        # On failure (here or in the caller) do not start windows still queued.
        pool.shutdown(wait=True, cancel_futures=True)


def fetch_range(client: FullbayClient, start: date, end: date, directory: Path) -> SpoolResult:
    """Fetch all of ``start..end`` before returning."""
    spool = SpoolResult(directory)
    for _ in fetch_windows(client, start, end, spool):
        pass
    return spool


def _fetch_window(client: FullbayClient, start: date, end: date, spool: SpoolResult) -> dict[date, int]:
    for attempt in range(1, WINDOW_ATTEMPTS + 1):
        try:
            return _write_window(client, start, end, spool)
        except FullbayTransientError as exc:
            if attempt == WINDOW_ATTEMPTS:
                raise FullbayError(
                    f"window {start}..{end} stayed inconsistent after {attempt} fetches: {exc}"
                ) from None
            client.log.warning(f"{exc}; fetching the window again ({attempt}/{WINDOW_ATTEMPTS - 1})")
    raise AssertionError("unreachable")


def _write_window(client: FullbayClient, start: date, end: date, spool: SpoolResult) -> dict[date, int]:
    days = days_in(start, end)
    counts = dict.fromkeys(days, 0)
    handles: dict[date, IO[bytes]] = {day: spool.path(day).open("wb") for day in days}
    try:
        for page in client.iter_window_pages(start, end):
            for record in page.records:
                day = _record_day(record)
                if day not in handles:
                    # Outside the window we asked for (or no usable date): keep it with the
                    # window's first day, where the loader quarantines it with the reason.
                    day = start
                handles[day].write(dump_record(record, page.strict))
                counts[day] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def _record_day(record: Any) -> date | None:
    try:
        return date.fromisoformat(str(record.get("invoiceDate"))[:10])
    except (AttributeError, ValueError):
        return None
