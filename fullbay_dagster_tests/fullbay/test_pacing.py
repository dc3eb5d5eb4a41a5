"""Adaptive pacing: free while Fullbay answers promptly, backing off when it pushes
back, recovering after. The pacer alone on a fake clock, then the client against
the simulator's 429, 5xx and slow-answer faults over real HTTP."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from fullbay_dagster.fullbay.client import FullbayClient, FullbayClientConfig
from fullbay_dagster.fullbay.pacing import FIRST_BACKOFF, AdaptivePacer
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.fullbay.spool import fetch_range
from fullbay_dagster_tests.conftest import TEST_KEY

DAY = date(2025, 3, 12)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(**overrides: Any) -> tuple[AdaptivePacer, FakeClock]:
    clock = FakeClock()
    settings: dict[str, Any] = {"max_in_flight": 2, "clock": clock, "sleep": clock.sleep, **overrides}
    return AdaptivePacer(**settings), clock


def call(p: AdaptivePacer, clock: FakeClock, *, ok: bool = True, latency: float = 0.01, **kw: Any) -> bool:
    p.acquire()
    clock.now += latency
    return p.release(ok=ok, latency=latency if ok else None, **kw)


# -- the pacer on its own ---------------------------------------------------------------


def test_prompt_answers_cost_nothing() -> None:
    p, clock = pacer()
    for _ in range(200):
        assert call(p, clock) is False
    assert clock.slept == []
    assert (p.interval, p.limit, p.stats.pushbacks) == (0.0, 2, 0)


def test_pushback_backs_off_exponentially_then_recovers() -> None:
    p, clock = pacer(ceiling=2.0)
    intervals = []
    for _ in range(5):
        assert call(p, clock, ok=False) is True
        intervals.append(p.interval)
    assert intervals == [FIRST_BACKOFF, 0.5, 1.0, 2.0, 2.0]  # doubling, capped at the ceiling
    assert p.limit == 1  # one call in flight while Fullbay pushes back
    before = len(clock.slept)
    call(p, clock)
    assert clock.slept[before:] and clock.slept[-1] == pytest.approx(2.0 - 0.01)  # the gap is paid
    for _ in range(10):
        call(p, clock)
    assert (p.interval, p.limit) == (0.0, 2)  # recovered: free again
    slept = len(clock.slept)
    for _ in range(20):
        call(p, clock)
    assert len(clock.slept) == slept


def test_retry_after_holds_every_call_until_it_has_passed() -> None:
    p, clock = pacer()
    p.acquire()  # another call is in flight when the 429 arrives
    call(p, clock, ok=False, retry_after=3.0)
    started = clock.now
    p.release(ok=True, latency=0.01)
    p.acquire()
    assert clock.now >= started + 3.0
    p.release(ok=True, latency=0.01)


def test_retry_after_is_capped() -> None:
    p, clock = pacer(retry_after_cap=5.0)
    call(p, clock, ok=False, retry_after=86_400)
    started = clock.now
    call(p, clock)
    assert clock.now - started <= 5.0 + 0.1


def test_the_floor_is_kept_even_when_all_is_well() -> None:
    p, clock = pacer(floor=0.3, max_in_flight=1)
    for _ in range(5):
        call(p, clock, latency=0.0)
    assert clock.slept == [pytest.approx(0.3)] * 4
    call(p, clock, ok=False)
    for _ in range(10):
        call(p, clock, latency=0.0)
    assert p.interval == 0.3


def test_an_answer_much_slower_than_usual_is_pushback_until_it_is_the_new_normal() -> None:
    p, clock = pacer()
    for _ in range(10):
        call(p, clock, latency=0.02)
    assert call(p, clock, latency=1.5) is True
    assert p.stats.slow_answers == 1 and p.interval > 0
    verdicts = [call(p, clock, latency=1.5) for _ in range(20)]
    assert verdicts[-1] is False  # the moving average caught up: slower, but steady
    assert p.interval == 0.0
    assert call(p, clock, latency=1.6) is False  # jitter on a slow service is not pushback


def test_millisecond_jitter_on_a_fast_link_is_not_pushback() -> None:
    p, clock = pacer()
    for latency in [0.002, 0.003, 0.05, 0.002, 0.2, 0.004] * 5:
        assert call(p, clock, latency=latency) is False


def test_calls_in_flight_never_exceed_the_cap() -> None:
    p = AdaptivePacer(max_in_flight=3)
    lock, peak, current = threading.Lock(), [0], [0]

    def worker() -> None:
        for _ in range(20):
            p.acquire()
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            time.sleep(0.001)
            with lock:
                current[0] -= 1
            p.release(ok=True, latency=0.001)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3


def test_waiting_calls_go_oldest_window_first_then_in_arrival_order() -> None:
    p = AdaptivePacer(max_in_flight=1)
    p.acquire()  # the one slot is taken: every call below waits
    order: list[tuple[int, ...]] = []
    lock = threading.Lock()

    def call_with(priority: tuple[int, ...]) -> None:
        p.acquire(priority)
        with lock:
            order.append(priority)
        p.release(ok=True, latency=0.001)

    priorities = [(20, 1), (10, 3), (20, 2), (10, 2), (10, 2)]
    threads = []
    for priority in priorities:
        threads.append(threading.Thread(target=call_with, args=(priority,)))
        threads[-1].start()
        while len(p._waiting) < len(threads):  # each call is queued before the next arrives
            time.sleep(0.001)
    p.release(ok=True, latency=0.001)
    for thread in threads:
        thread.join()
    assert order == sorted(priorities)
    assert p.in_flight == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptivePacer(floor=1.0, ceiling=0.5)
    with pytest.raises(ValueError):
        FullbayClientConfig(api_key=TEST_KEY, min_interval=2.0, max_interval=1.0)


# -- the client against the simulator ----------------------------------------------------


class TimedSession(requests.Session):
    """Records when each call started and ended and its status: instrumentation only."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        started = time.monotonic()
        response = super().request(*args, **kwargs)
        with self._lock:
            self.calls.append((started, time.monotonic(), response.status_code))
        return response


def timed_client(simulator: Simulator, **overrides: Any) -> tuple[FullbayClient, TimedSession]:
    session = TimedSession()
    settings: dict[str, Any] = {
        "api_key": TEST_KEY,
        "base_url": simulator.url,
        "public_ip": "127.0.0.1",
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "read_timeout": 5.0,
        **overrides,
    }
    return FullbayClient(FullbayClientConfig(**settings), session=session), session


def test_a_prompt_service_is_called_back_to_back(simulator: Simulator, tmp_path: Path) -> None:
    client, _ = timed_client(simulator)
    spool = fetch_range(client, DAY, DAY + timedelta(days=13), tmp_path)
    assert sum(spool.counts.values()) == 14 * simulator.config.invoices_per_day
    assert client.stats.requests == len(simulator.requests()) > 2
    assert client.pacer.stats.waited_seconds == 0.0
    assert client.pacer.stats.pushbacks == 0


def test_a_429_holds_every_window_for_retry_after_then_the_pace_recovers(simulator: Simulator, tmp_path: Path) -> None:
    simulator.configure(retry_after=1)
    client, session = timed_client(simulator, retry_after_cap=30, max_in_flight=2)
    expected = 14 * simulator.config.invoices_per_day
    simulator.queue_faults("429")
    spool = fetch_range(client, DAY, DAY + timedelta(days=13), tmp_path)
    assert sum(spool.counts.values()) == expected
    assert client.pacer.stats.pushbacks == 1
    throttled_at = next(ended for _, ended, status in session.calls if status == 429)
    later = [started for started, _, _ in session.calls if started > throttled_at]
    assert later and min(later) >= throttled_at + 1.0  # no window called before Retry-After passed
    assert (client.pacer.interval, client.pacer.limit) == (0.0, 2)  # recovered by the end


@pytest.mark.parametrize("fault", ["503", "502", "429-no-retry-after", "reset", "fail"])
def test_server_trouble_slows_the_pace(simulator: Simulator, fault: str) -> None:
    client, _ = timed_client(simulator)
    simulator.queue_faults(fault)
    assert len(list(client.iter_invoices(DAY, DAY))) == simulator.config.invoices_per_day
    assert client.pacer.stats.pushbacks == 1


def test_a_slow_answer_slows_the_pace_and_prompt_ones_restore_it(simulator: Simulator) -> None:
    client, session = timed_client(simulator, max_in_flight=1)
    list(client.iter_invoices(DAY - timedelta(days=6), DAY))  # a baseline of prompt answers
    simulator.configure(slow_seconds=1.0)
    simulator.queue_faults("timeout")  # answered, but a second late
    list(client.iter_invoices(DAY, DAY))
    assert client.pacer.stats.slow_answers == 1
    assert client.pacer.stats.pushbacks == 0
    assert client.pacer.stats.waited_seconds > 0  # the call after the slow one waited its turn
    list(client.iter_invoices(DAY, DAY + timedelta(days=6)))
    assert client.pacer.interval == 0.0
    assert len(session.calls) == len(simulator.requests())


def test_a_configured_floor_spaces_every_call(simulator: Simulator) -> None:
    client, session = timed_client(simulator, min_interval=0.2, max_in_flight=1)
    list(client.iter_invoices(DAY, DAY))
    starts = [started for started, _, _ in session.calls]
    assert len(starts) >= 3
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(starts))
