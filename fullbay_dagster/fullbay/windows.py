"""Splitting date ranges into the request windows Fullbay accepts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

MAX_WINDOW_DAYS = 7  # Fullbay rejects (or worse, undefined) windows longer than this.


def date_windows(start: date, end: date, max_days: int = MAX_WINDOW_DAYS) -> Iterator[tuple[date, date]]:
    """Yield inclusive (start, end) windows covering ``start..end``, each at most ``max_days`` long."""
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    if not 1 <= max_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window length must be between 1 and {MAX_WINDOW_DAYS} days, got {max_days}")
    cursor = start
    while cursor <= end:
        window_end = min(cursor + timedelta(days=max_days - 1), end)
        yield cursor, window_end
        cursor = window_end + timedelta(days=1)


def days_in(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]
