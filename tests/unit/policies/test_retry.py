"""Retry policy and concurrency limit, alone: no real waiting, no sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from resumer.errors import QueryError
from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.retry import RetryPolicy, Stopped, Throttled

FAST = RetryPolicy(attempts=3, initial=0.0, maximum=0.0)


def noting(waits: list[float]) -> Callable[[float], bool]:
    """A retrier's sleep that only notes each wait, and is never stopped."""

    def sleep(seconds: float) -> bool:
        waits.append(seconds)
        return False

    return sleep


def flaky(failures: list[QueryError], result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return calls, fn


def test_transient_errors_are_retried_until_success() -> None:
    calls, fn = flaky([QueryError("503", transient=True), QueryError("reset", transient=True)])
    assert FAST.bind(threading.Event()).call(fn, "n") == "ok"  # type: ignore[arg-type]
    assert len(calls) == 3


def test_attempts_are_bounded() -> None:
    calls, fn = flaky([QueryError("503", transient=True)] * 5)
    with pytest.raises(QueryError, match="503"):
        FAST.bind(threading.Event()).call(fn, "n")  # type: ignore[arg-type]
    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    calls, fn = flaky([QueryError("404", transient=False)])
    with pytest.raises(QueryError, match="404"):
        FAST.bind(threading.Event()).call(fn, "n")  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_stop_interrupts_the_backoff_wait() -> None:
    stop = threading.Event()
    stop.set()
    slow = RetryPolicy(attempts=3, initial=3600.0, maximum=3600.0)
    calls, fn = flaky([QueryError("503", transient=True)])
    with pytest.raises(Stopped):
        slow.bind(stop).call(fn, "n")  # type: ignore[arg-type]
    assert len(calls) == 1


def test_each_retry_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    _, fn = flaky([QueryError("HTTP 502", transient=True)])
    with caplog.at_level("INFO", logger="resumer.policies"):
        FAST.bind(threading.Event()).call(fn, "level 2 id 'X'")  # type: ignore[arg-type]
    (line,) = caplog.messages
    assert "retry level 2 id 'X': attempt 1 of 3 failed (HTTP 502)" in line


def test_limiter_never_lets_more_than_the_limit_through() -> None:
    limiter = ConcurrencyLimiter(3)
    inside = threading.Semaphore(0)
    release = threading.Event()
    peak = []

    def hold() -> None:
        with limiter:
            peak.append(limiter.in_flight)
            inside.release()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert inside.acquire(timeout=10)
    assert not inside.acquire(timeout=0.05)  # the 4th is held back while 3 are inside
    assert limiter.in_flight == 3
    release.set()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)  # each waiter was woken
    assert len(peak) == 8 and max(peak) == 3
    assert limiter.in_flight == 0


def test_raising_the_limit_lets_waiters_in() -> None:
    limiter = ConcurrencyLimiter(1)
    limiter.acquire()
    entered = threading.Event()

    def wait_for_slot() -> None:
        with limiter:
            entered.set()

    thread = threading.Thread(target=wait_for_slot)
    thread.start()
    assert not entered.wait(0.05)
    limiter.set_limit(2)
    assert entered.wait(10)
    thread.join(10)
    limiter.release()


def test_retry_after_is_honoured_and_capped_by_max() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, initial=0.0, maximum=2.0)
    retrier = policy.bind(threading.Event(), sleep=noting(waits))
    _, fn = flaky(
        [
            QueryError("429", transient=True, retry_after=1.5),
            QueryError("429", transient=True, retry_after=600.0),
        ]
    )
    assert retrier.call(fn, "n") == "ok"  # type: ignore[arg-type]
    assert waits == [1.5, 2.0]


def test_backoff_is_full_jitter_exponential_within_its_bounds() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=6, initial=0.5, maximum=3.0, multiplier=2.0)
    retrier = policy.bind(threading.Event(), sleep=noting(waits))
    _, fn = flaky([QueryError("503", transient=True)] * 5)
    retrier.call(fn, "n")  # type: ignore[arg-type]
    caps = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(0.0 <= wait <= cap for wait, cap in zip(waits, caps, strict=True))


# -- parking: a throttle handed back instead of waited out in the worker --------


def throttle(retry_after: float | None = None) -> QueryError:
    return QueryError("429", transient=True, throttled=True, retry_after=retry_after)


def test_a_parking_call_hands_a_throttle_back_with_its_wait_instead_of_sleeping() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, initial=0.0, maximum=2.0)
    retrier = policy.bind(threading.Event(), sleep=noting(waits))
    calls, fn = flaky([throttle(retry_after=1.5)])
    with pytest.raises(Throttled) as handed:
        retrier.call(fn, "n", park=True)  # type: ignore[arg-type]
    assert (handed.value.delay, len(calls), waits) == (1.5, 1, [])


def test_a_parking_call_still_retries_other_failures_in_place() -> None:
    waits: list[float] = []
    retrier = FAST.bind(threading.Event(), sleep=noting(waits))
    calls, fn = flaky([QueryError("502", transient=True), throttle()])
    with pytest.raises(Throttled) as handed:
        retrier.call(fn, "n", park=True)  # type: ignore[arg-type]
    assert len(calls) == 2 and len(waits) == 1  # the 502 waited here, the 429 is handed back
    assert 0.0 <= handed.value.delay <= FAST.maximum


def test_attempts_made_before_parking_count_against_the_budget() -> None:
    """3 attempts in all: two spent before the node was parked leave one, and a throttle
    on the last attempt is the error itself (the runner then decides)."""
    calls, fn = flaky([throttle(retry_after=1.0)])
    with pytest.raises(QueryError, match="429"):
        FAST.bind(threading.Event()).call(fn, "n", made=2, park=True)  # type: ignore[arg-type]
    assert len(calls) == 1
    calls, fn = flaky([QueryError("502", transient=True)] * 3)
    with pytest.raises(QueryError, match="502"):
        FAST.bind(threading.Event()).call(fn, "n", made=1, park=True)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_without_parking_a_throttle_is_waited_out_in_place() -> None:
    waits: list[float] = []
    retrier = FAST.bind(threading.Event(), sleep=noting(waits))
    calls, fn = flaky([throttle(retry_after=0.0)])
    assert retrier.call(fn, "n") == "ok"  # type: ignore[arg-type]
    assert (len(calls), waits) == (2, [0.0])
