"""The token bucket and the adaptive limit, with fake clocks."""

from __future__ import annotations

import threading

import pytest

from resumer.policies import AdaptiveLimit, ConcurrencyLimiter, Gate, Stopped, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_spaces_calls_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(per_second=50, burst=5, clock=clock)
    waits = [bucket.reserve() for _ in range(10)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10])


def test_bucket_refills_with_time_but_never_beyond_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(per_second=10, burst=2, clock=clock)
    bucket.reserve(), bucket.reserve()
    clock.now = 100.0
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_a_stop_interrupts_a_wait_for_a_token() -> None:
    bucket = TokenBucket(per_second=0.001, burst=1)
    bucket.reserve()
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        bucket.acquire(stop)


def adaptive(
    minimum: int = 1, maximum: int = 32
) -> tuple[AdaptiveLimit, ConcurrencyLimiter, Clock]:
    clock = Clock()
    limiter = ConcurrencyLimiter(maximum)
    return AdaptiveLimit(limiter, minimum, maximum, clock), limiter, clock


def test_slow_start_grows_by_one_per_success_up_to_the_maximum() -> None:
    limit, limiter, _ = adaptive(maximum=10)
    assert limiter.limit == 1
    for _ in range(20):
        limit.record("success", 0.02)
    assert limiter.limit == 10


def test_many_failures_at_once_shrink_the_limit_once() -> None:
    limit, limiter, clock = adaptive()
    for _ in range(19):
        limit.record("success", 0.02)
    assert limiter.limit == 20
    for _ in range(10):
        limit.record("throttle", 0.02)  # ten 429s in the same round trip
    assert limiter.limit == 16
    clock.now = 1.0
    limit.record("failure", 0.02)
    assert limiter.limit == 12


def test_it_never_leaves_its_bounds() -> None:
    limit, limiter, clock = adaptive(minimum=3, maximum=8)
    for step in range(50):
        clock.now = step
        limit.record("failure", 0.02)
    assert limiter.limit == 3
    for _ in range(10_000):
        limit.record("success", 0.02)
    assert limiter.limit == 8


def test_it_grows_back_quickly_to_the_ceiling_and_slowly_past_it() -> None:
    limit, limiter, clock = adaptive()
    for _ in range(9):
        limit.record("success", 0.02)
    clock.now = 1.0
    limit.record("throttle", 0.02)  # 10 was too many: down to 8, ceiling 10
    assert limiter.limit == 8
    for _ in range(20):
        limit.record("success", 0.02)
    assert limiter.limit == 9  # back under the ceiling within a few round trips
    for _ in range(40):
        limit.record("success", 0.02)
    assert limiter.limit == 9  # but past it only very slowly


def test_latency_that_climbs_shrinks_the_limit() -> None:
    limit, limiter, clock = adaptive()
    for _ in range(15):
        limit.record("success", 0.02)
    before = limiter.limit
    for step in range(30):
        clock.now = 1.0 + step
        limit.record("success", 0.5)  # 25 times the baseline
    assert limiter.limit < before


def test_the_gate_pauses_every_call_after_a_retry_after() -> None:
    clock = Clock()
    gate = Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(4), max_pause=5.0, clock=clock)
    with gate.slot() as outcome:
        outcome.kind, outcome.retry_after = "throttle", 60.0
    assert gate.paused_for == 5.0  # capped by retry.max
    clock.now = 5.0
    assert gate.paused_for == 0.0
    with gate.slot() as outcome:
        outcome.kind = "success"


def test_a_throttle_sent_before_the_pause_does_not_stretch_it() -> None:
    clock = Clock()
    gate = Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(4), clock=clock)
    with gate.slot() as outcome:
        outcome.kind, outcome.retry_after = "throttle", 1.0
    assert gate.paused_for == 1.0
    clock.now = 0.5
    gate._record(outcome, False, latency=0.6)  # sent at -0.1, before the pause began
    assert gate.paused_for == 0.5
    gate._record(outcome, False, latency=0.1)  # sent at 0.4, after: new news
    assert gate.paused_for == 1.0
