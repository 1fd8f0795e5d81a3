"""The circuit breaker, with a fake clock: opens, waits, probes once, closes."""

from __future__ import annotations

import threading

import pytest

from resumer.policies.breaker import CircuitBreaker
from resumer.policies.retry import Stopped


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        go, probe, _ = breaker.permit()
        assert go
        breaker.after_call(probe, failed=True)


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 10.0, Clock())
    fail(breaker, 2)
    breaker.after_call(False, failed=False)  # a success resets the count
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.opened == 1


def test_while_open_nothing_goes_then_exactly_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    fail(breaker, 1)
    go, _, wait = breaker.permit()
    assert not go and wait > 0
    clock.now = 10.0
    assert breaker.state == "half-open"
    assert breaker.permit()[:2] == (True, True)  # the probe
    assert not breaker.permit()[0]  # everyone else waits for its answer


def test_a_probe_that_answers_closes_and_one_that_fails_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    fail(breaker, 1)
    clock.now = 5.0
    _, probe, _ = breaker.permit()
    breaker.after_call(probe, failed=True)
    assert breaker.state == "open"
    clock.now = 6.9
    assert breaker.state == "open"  # the timer restarted at the failed probe, for 2 s
    clock.now = 7.0
    _, probe, _ = breaker.permit()
    breaker.after_call(probe, failed=False)
    assert breaker.state == "closed"
    assert breaker.permit()[0]


def probe_times(breaker: CircuitBreaker, clock: Clock, until: float) -> list[float]:
    """When probes go through while every probe fails, the clock moving in 0.1 s steps."""
    times = []
    tenths = round(clock.now * 10)  # whole tenths: no rounding error piles up
    while tenths < until * 10:
        clock.now = tenths / 10
        go, probe, _ = breaker.permit()
        if go:
            assert probe
            times.append(clock.now)
            breaker.after_call(probe, failed=True)
        tenths += 1
    return times


def test_it_probes_early_and_doubles_the_wait_up_to_reset_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    fail(breaker, 1)  # opened at 0
    # 1 s, then 2, 4, 8, then every reset_timeout (10 s): a short outage costs a
    # second or two, a long one a handful of calls.
    assert probe_times(breaker, clock, 50.0) == [1.0, 3.0, 7.0, 15.0, 25.0, 35.0, 45.0]


def test_once_closed_the_next_opening_starts_again_at_the_first_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    fail(breaker, 1)
    assert probe_times(breaker, clock, 8.0) == [1.0, 3.0, 7.0]
    clock.now = 15.0
    _, probe, _ = breaker.permit()
    breaker.after_call(probe, failed=False)
    fail(breaker, 1)  # opened again at 15
    assert probe_times(breaker, clock, 17.0) == [16.0]


def test_a_reset_timeout_below_the_first_probe_is_kept() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 0.3, clock)
    fail(breaker, 1)
    assert probe_times(breaker, clock, 1.0) == [0.3, 0.6, 0.9]


def test_a_stop_abandons_a_probe_without_closing() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    fail(breaker, 1)
    clock.now = 1.0
    _, probe, _ = breaker.permit()
    breaker.abandon(probe)
    assert breaker.state == "half-open"
    assert breaker.permit()[:2] == (True, True)


def test_waiting_callers_are_released_by_the_probe_and_stopped_by_a_stop() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    fail(breaker, 1)
    stop = threading.Event()
    through: list[bool] = []
    stopped: list[bool] = []

    def call() -> None:
        try:
            probe = breaker.before_call(stop)
        except Stopped:
            stopped.append(True)
            return
        through.append(probe)
        breaker.after_call(probe, failed=False)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    clock.now = 1.0  # half-open: one probe goes, answers, and the rest follow
    for thread in threads:
        thread.join(10)
    assert sorted(through) == [False] * 5 + [True]
    fail(breaker, 1)
    waiter = threading.Thread(target=call)
    waiter.start()
    stop.set()
    waiter.join(10)
    assert stopped == [True]


@pytest.mark.parametrize("threshold", [1, 4])
def test_answers_that_are_not_failures_never_open_it(threshold: int) -> None:
    breaker = CircuitBreaker(threshold, 1.0, Clock())
    for _ in range(10):
        _, probe, _ = breaker.permit()
        breaker.after_call(probe, failed=False)
    assert breaker.state == "closed"
