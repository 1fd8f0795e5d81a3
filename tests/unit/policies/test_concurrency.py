"""The adaptive in-flight limit, with a fake clock (the send rate: test_pacer.py)."""

from __future__ import annotations

from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
