"""Pacing that costs nothing while Fullbay answers promptly and backs off when it
pushes back.

Fullbay publishes no rate limit. A fixed pause between calls (practitioners use
0.3-2 s) is paid on every call, even when the service is idle: 280 pages cost 84 s
at 0.3 s. Instead, calls go out back to back, up to ``max_in_flight`` at once, until
Fullbay pushes back (HTTP 429, ``Retry-After``, 5xx, timeouts, resets, or answers
much slower than usual). Then the pacer widens the gap between call starts
(doubling, up to ``ceiling``), drops to one call in flight, and holds every call
until a ``Retry-After`` has passed. Each prompt answer afterwards halves the gap
and lets one more call fly, so the pace recovers within a few calls.
This is additive-increase/multiplicative-decrease, as in TCP congestion control,
applied to the gap and the concurrency. ``floor`` is the smallest gap: 0 by
default, configurable for accounts that need a steady pace.

Hand-written because the libraries that pace calls (token buckets such as
``pyrate-limiter``, ``ratelimit``) enforce a fixed rate, which is what this
replaces; tenacity, which the client uses for the retries themselves, waits per
call and knows nothing of the calls running beside it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# The first step of a backoff when the gap was 0: small enough that one stray 429
# costs little, doubled on each further pushback.
FIRST_BACKOFF = 0.25
# A gap this small after recovery is treated as no gap at all.
NEGLIGIBLE = 0.01
# Latency is compared with a moving average of recent prompt answers; an answer
# must also be this much slower in absolute terms to count as pushback, so that
# millisecond jitter on a fast link does not.
SLOW_MARGIN = 0.5
EWMA_WEIGHT = 0.2


@dataclass
class PacerStats:
    pushbacks: int = 0
    slow_answers: int = 0
    waited_seconds: float = 0.0


class AdaptivePacer:
    """Shared by every thread of one client. ``acquire`` before a call, ``release``
    after it with what happened; thread-safe."""

    def __init__(
        self,
        *,
        floor: float = 0.0,
        ceiling: float = 30.0,
        max_in_flight: int = 2,
        slow_factor: float = 4.0,
        retry_after_cap: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if floor < 0 or ceiling < floor or max_in_flight < 1 or slow_factor <= 1:
            raise ValueError("need 0 <= floor <= ceiling, max_in_flight >= 1 and slow_factor > 1")
        self.floor, self.ceiling, self.max_in_flight = floor, ceiling, max_in_flight
        self.slow_factor, self.retry_after_cap = slow_factor, retry_after_cap
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()
        self.interval = floor  # current gap between two call starts
        self.limit = max_in_flight  # current calls allowed in flight
        self.in_flight = 0
        self._waiting: list[tuple[tuple[int, ...], int]] = []  # heap of (priority, arrival)
        self._arrivals = itertools.count()
        self._next_start = 0.0
        self._resume_at = 0.0  # no call starts before this (Retry-After)
        self._baseline: float | None = None  # moving average latency of prompt answers
        self.stats = PacerStats()

    def acquire(self, priority: tuple[int, ...] = ()) -> None:
        """Wait for a free slot and this call's turn. Waiting calls go in order of
        ``priority`` (lowest first; the client passes (window start, page), so the
        oldest window's pages go first and its days can be loaded sooner), then of
        arrival."""
        with self._cond:
            ticket = (priority, next(self._arrivals))
            heapq.heappush(self._waiting, ticket)
            while self.in_flight >= self.limit or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            if self._waiting and self.in_flight + 1 < self.limit:
                self._cond.notify_all()  # a slot is left: the next in line may go too
            self.in_flight += 1
            now = self._clock()
            start = max(now, self._next_start, self._resume_at)
            self._next_start = start + self.interval
            wait = start - now
            self.stats.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)

    def release(self, *, ok: bool, latency: float | None = None, retry_after: float | None = None) -> bool:
        """Free the slot. ``ok``: Fullbay answered (whatever the body says); not ok:
        it pushed back (429, 5xx, timeout, reset). Returns True when this call made
        the pacer slow down."""
        with self._cond:
            self.in_flight -= 1
            if not ok:
                self._back_off(retry_after)
                slowed = True
            else:
                slowed = self._answered(latency)
            self._cond.notify_all()
            return slowed

    def push_back(self, retry_after: float | None = None) -> None:
        """Pushback seen after the slot was released (e.g. a 'try again later' body)."""
        with self._cond:
            self._back_off(retry_after)

    # -- under the lock --------------------------------------------------------

    def _back_off(self, retry_after: float | None) -> None:
        self.stats.pushbacks += 1
        self.interval = min(self.ceiling, max(self.interval * 2, FIRST_BACKOFF, self.floor))
        self.limit = max(1, self.limit // 2)
        if retry_after is not None:
            self._resume_at = max(self._resume_at, self._clock() + min(retry_after, self.retry_after_cap))

    def _answered(self, latency: float | None) -> bool:
        if latency is None:
            return False
        baseline = self._baseline
        slow = baseline is not None and latency > baseline * self.slow_factor and latency > baseline + SLOW_MARGIN
        # Slow answers move the average too, so a service that stays slower becomes the new normal.
        self._baseline = latency if baseline is None else baseline + EWMA_WEIGHT * (latency - baseline)
        if slow:
            self.stats.slow_answers += 1
            self.interval = min(self.ceiling, max(self.interval * 2, FIRST_BACKOFF, self.floor))
            self.limit = max(1, self.limit - 1)
            return True
        self.interval = self.interval / 2
        if self.interval < max(self.floor, NEGLIGIBLE):
            self.interval = self.floor
        self.limit = min(self.max_in_flight, self.limit + 1)
        return False
