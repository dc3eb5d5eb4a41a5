"""Fetch a date range into per-day JSON-lines files on local disk.

Why spool: one request window covers up to seven days, but each day is loaded
in its own transaction; and the API can take minutes, which must not be spent
inside a database transaction. Files keep memory flat however large a day is.

A record is checked as it is spooled (its key, its day, JSON that PostgreSQL can
store) and, when it passes, spooled as what the raw landing stores: its key, its
content hash and its canonical JSON text. The landing then neither parses it nor
serialises it again; those were over half of the landing's Python time. A record
the check refuses is spooled as it came, and the landing checks it again and
quarantines it with the reason.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from fullbay_dagster.fullbay.client import FullbayClient
from fullbay_dagster.fullbay.endpoints import INVOICES, Endpoint
from fullbay_dagster.fullbay.errors import FullbayInconsistentWindowError, FullbayRepeatsError, FullbayTransientError
from fullbay_dagster.fullbay.generic_records import record_check
from fullbay_dagster.fullbay.jsonio import StrictRecord, dump_record, parse_record
from fullbay_dagster.fullbay.records import Checked, RecordError, parse_date
from fullbay_dagster.fullbay.windows import date_windows, days_in

_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class SpoolDiskFullError(OSError):
    """The spool's disk is full or a file outgrew the size limit; says where and how to move it."""


def _disk_full(directory: Path, exc: OSError) -> SpoolDiskFullError:
    tmpdir = os.environ.get("TMPDIR")
    where = f"TMPDIR={tmpdir}" if tmpdir else f"TMPDIR is unset, so {tempfile.gettempdir()}"
    return SpoolDiskFullError(
        exc.errno,
        f"Cannot write the spool in {directory}: {exc.strerror}. Fetched invoices are spooled to "
        f"local files until their day is loaded, in a temporary folder under TMPDIR ({where}). "
        "Free space there, raise the file-size limit (ulimit -f), or set TMPDIR to a larger disk.",
    )


@dataclass
class SpoolResult:
    directory: Path
    # When fetching began: every record is at least this fresh (see loader.load_raw_day).
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    counts: dict[date, int] = field(default_factory=dict)
    # When the fetch that spooled each day's window began: a window fetched minutes into
    # a long backfill is that much fresher than the step's start.
    window_fetched_at: dict[date, datetime] = field(default_factory=dict)

    def fetched_at_of(self, day: date) -> datetime:
        """How fresh ``day``'s records are at least: the later answer wins (raw_landing)."""
        return self.window_fetched_at.get(day, self.fetched_at)

    def path(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.jsonl"

    def checked(self, day: date) -> Iterator[Checked | Any]:
        """What the raw landing takes: each record of ``day`` as a :class:`Checked`,
        or as it came where the check refused it."""
        for line in self._lines(day):
            if line[:1] == _CHECKED:
                key, digest, text = _fields(line)
                yield Checked(orjson.loads(key), text.decode(), digest.decode())
            else:
                yield parse_record(line)

    def records(self, day: date) -> Iterator[Any]:
        """Each record of ``day``, parsed (its keys sorted where it was checked)."""
        for line in self._lines(day):
            yield parse_record(_fields(line)[2] if line[:1] == _CHECKED else line)

    def _lines(self, day: date) -> Iterator[bytes]:
        with self.path(day).open("rb", buffering=_BUFFER) as handle:
            yield from handle


# A checked record's line: this mark (no JSON text starts with it), the key as a JSON
# string, the content hash and the canonical text, separated by tabs (JSON escapes
# every tab and newline inside a text), then a newline.
_CHECKED = b"\x1e"


def _checked_line(checked: Checked) -> bytes:
    key = orjson.dumps(checked.key)
    return b"".join((_CHECKED, key, b"\t", checked.digest.encode(), b"\t", checked.text.encode(), b"\n"))


def _fields(line: bytes) -> list[bytes]:
    """A checked line's key (JSON), content hash and canonical text."""
    return line[1:].rstrip(b"\n").split(b"\t", 2)


def _spool_line(record: Any, day: date, strict: bool, check: Callable[[Any, date], Checked]) -> bytes:
    """``record``, of a page parsed strictly or not, as it is spooled for ``day``."""
    try:
        # A strict page's records take orjson's canonical text (see jsonio).
        checked = check(StrictRecord(record) if strict and type(record) is dict else record, day)
    except RecordError:
        return dump_record(record, strict)
    return _checked_line(checked)


# A record's line (~9 KiB) outgrows the default 8 KiB buffer, so each would be a
# system call of its own; 256 KiB moves ~30 at once (a 7-day window writes 7 files).
_BUFFER = 1 << 18

# A window with at least this many pages a day is fetched one day at a time: at most
# one partly filled page a day more (under 10 % more calls), and the first days are
# spooled, and can be loaded, after a seventh of the window's pages instead of all.
DENSE_PAGES_PER_DAY = 10


def fetch_windows(
    client: FullbayClient, start: date, end: date, spool: SpoolResult, endpoint: Endpoint = INVOICES
) -> Iterator[list[date]]:
    """Fetch ``start..end`` window by window, up to ``max_in_flight`` windows at once
    (the oldest first), yielding each window's days as soon as they are spooled, so
    the caller can load them while later windows are still being fetched. An endpoint
    whose date field is unknown is fetched one day per window (see ``endpoints``), and
    so is a busy account (see ``DENSE_PAGES_PER_DAY``): page 1 of the first window
    tells, and serves as that window's page 1 when the windows stay as they are."""
    window_days = min(client.config.window_days, endpoint.window_days)
    windows = list(date_windows(start, end, window_days))
    first_page: dict[str, Any] | None = None
    first_page_at = datetime.now(UTC)
    if window_days > 1 and windows[0][0] < windows[0][1]:
        first, last = windows[0]
        first_page = client.fetch_page(first, last, 1, endpoint.php)
        if int(first_page["totalPages"]) >= DENSE_PAGES_PER_DAY * len(days_in(first, last)):
            client.log.info(
                f"{endpoint.php} {first}..{last}: {first_page['totalPages']} pages; fetching one day per window"
            )
            windows, first_page = list(date_windows(start, end, 1)), None
    pool = ThreadPoolExecutor(max_workers=client.config.max_in_flight, thread_name_prefix="fullbay")
    failed = threading.Event()

    def fetch(first: date, last: date, page_1: tuple[dict[str, Any] | None, datetime] | None) -> dict[date, int]:
        # Once a window has failed the step fails: a worker must not start the next one
        # (its retries against a failing API would only delay the step's retry).
        if failed.is_set():
            return {}
        try:
            return _fetch_window(client, first, last, spool, endpoint, page_1)
        except BaseException:
            failed.set()
            raise

    try:
        futures = [
            pool.submit(fetch, first, last, (first_page, first_page_at) if n == 0 else None)
            for n, (first, last) in enumerate(windows)
        ]
        for future in as_completed(futures):
            try:
                counts = future.result()
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                raise _disk_full(spool.directory, exc) from exc
            if not counts:
                continue  # not fetched: another window failed
            spool.counts.update(counts)
            yield sorted(counts)
    finally:
        # On failure (here or in the caller) do not start windows still queued.
        pool.shutdown(wait=True, cancel_futures=True)


def fetch_range(
    client: FullbayClient, start: date, end: date, directory: Path, endpoint: Endpoint = INVOICES
) -> SpoolResult:
    """Fetch all of ``start..end`` before returning."""
    spool = SpoolResult(directory)
    for _ in fetch_windows(client, start, end, spool, endpoint):
        pass
    return spool


def _fetch_window(
    client: FullbayClient,
    start: date,
    end: date,
    spool: SpoolResult,
    endpoint: Endpoint = INVOICES,
    first: tuple[dict[str, Any] | None, datetime] | None = None,
) -> dict[date, int]:
    """Fetch one window until it is consistent (``first``: its page 1, fetched already,
    and when that fetch began). Totals that move between pages, or
    invoices repeated differently from one fetch to the next, get a fresh pass from
    page 1 after a pause; repeats that come back the same are accepted (see
    ``FullbayClient.iter_window_pages``). Past the last pause the window fails the
    run: it is permanent for this run rather than minutes of step retries."""
    waits = client.config.window_refetch_waits
    accept: tuple[str, ...] | None = None
    for attempt in range(len(waits) + 1):
        # Page 1 already fetched serves the first pass only: a refetch starts afresh.
        first_page, began = first if first is not None and attempt == 0 else (None, datetime.now(UTC))
        try:
            counts = _write_window(client, start, end, spool, accept, endpoint, first_page)
        except FullbayTransientError as exc:
            accept = exc.digests if isinstance(exc, FullbayRepeatsError) else None
            if attempt == len(waits):
                raise FullbayInconsistentWindowError(
                    f"window {start}..{end} stayed inconsistent after {attempt + 1} fetches: {exc}"
                ) from None
            client.log.warning(f"{exc}; fetching the window again in {waits[attempt]:g}s ({attempt + 1}/{len(waits)})")
            time.sleep(waits[attempt])
            continue
        spool.window_fetched_at.update(dict.fromkeys(counts, began))
        return counts
    raise AssertionError("unreachable")


def _write_window(
    client: FullbayClient,
    start: date,
    end: date,
    spool: SpoolResult,
    accept: tuple[str, ...] | None,
    endpoint: Endpoint = INVOICES,
    first_page: dict[str, Any] | None = None,
) -> dict[date, int]:
    days = days_in(start, end)
    counts = dict.fromkeys(days, 0)
    check = record_check(endpoint)
    handles: dict[date, IO[bytes]] = {day: spool.path(day).open("wb", buffering=_BUFFER) for day in days}
    try:
        pages = client.iter_window_pages(start, end, accept, endpoint.php, endpoint.key_field, first_page)
        for page in pages:
            for record in page.records:
                # Without a known date field the window is one day: it dates the record.
                day = _record_day(record, endpoint.date_field) if endpoint.date_field else start
                if day not in handles:
                    # Outside the window we asked for (or no usable date): keep it with the
                    # window's first day, where the loader quarantines it with the reason.
                    day = start
                handles[day].write(_spool_line(record, day, page.strict, check))
                counts[day] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def _record_day(record: Any, date_field: str = "invoiceDate") -> date | None:
    """The day the record's check will read (``parse_date``), so that both agree."""
    try:
        return parse_date(record.get(date_field), date_field)
    except (AttributeError, RecordError):
        return None
