"""Policies around each HTTP call: the retry policy and the in-flight limit.

Plain objects with injected time, unit-tested alone. The order for a call is:
stop flag → concurrency slot → HTTP, wrapped in the retry policy. (The
breaker, rate limiter and adaptive limit slot in here.)

This module knows nothing of the database or of the job file's layout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resumer.errors import QueryError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Defaults: a few quick retries for transient failures.
DEFAULT_ATTEMPTS = 4  # calls per query in all, the first included
DEFAULT_INITIAL = 0.2  # seconds, the first backoff's upper bound
DEFAULT_MAX = 2.0  # seconds, the largest backoff


class Stopped(Exception):
    """A stop was requested while a query waited to (re)try: abandon it, don't fail it."""


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, QueryError) and error.transient


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Full-jitter exponential backoff for transient errors.

    ``wait = uniform(0, min(maximum, initial * 2 ** (n - 1)))`` before retry n.

    >>> retrier = RetryPolicy(attempts=3, initial=0.01, maximum=0.05).bind(threading.Event())
    >>> retrier.call(lambda: 42, "F1")
    42
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial: float = DEFAULT_INITIAL
    maximum: float = DEFAULT_MAX

    def bind(self, stop: threading.Event) -> Retrier:
        """A retrier whose waits end early (raising ``Stopped``) when ``stop`` is set."""
        return Retrier(self, stop)


class _Replay(Generic[T]):
    """Raises an already-met failure on its first call, then calls ``fn``."""

    def __init__(self, fn: Callable[[], T], first: BaseException) -> None:
        self._fn = fn
        self._first: BaseException | None = first

    def __call__(self, _label: str) -> T:
        if self._first is not None:
            error, self._first = self._first, None
            raise error
        return self._fn()


class Retrier:
    """Applies a ``RetryPolicy``; one instance serves every thread.

    tenacity keeps each call's state thread-local, so the ``Retrying`` object
    is built once rather than once per query.
    """

    def __init__(self, policy: RetryPolicy, stop: threading.Event) -> None:
        self.policy = policy
        self._stop = stop
        self._retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_random_exponential(multiplier=policy.initial, max=policy.maximum),
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )

    def call(self, fn: Callable[[], T], label: str) -> T:
        """Run ``fn`` until it succeeds, fails for good, runs out of attempts or a stop comes.

        The first attempt runs bare: most calls succeed, and tenacity's
        bookkeeping is only worth its cost once one has failed. tenacity then
        replays that failure as its attempt 1, so numbering and waits are its own.
        """
        try:
            return fn()
        except QueryError as error:
            if not error.transient or self.policy.attempts <= 1:
                raise
            first = error
        result: T = self._retrying(_Replay(fn, first), label)
        return result

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Stopped

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            "retry %s: attempt %d of %d failed (%s); waiting %.2fs",
            state.args[0],
            state.attempt_number,
            self.policy.attempts,
            error,
            state.upcoming_sleep,
        )


class ConcurrencyLimiter:
    """At most ``limit`` holders at once, across all threads; the limit may change live.

    >>> limiter = ConcurrencyLimiter(2)
    >>> with limiter:
    ...     limiter.in_flight
    1
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._limit = limit
        self._in_flight = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self._limit = max(1, limit)
            self._cond.notify_all()

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    def __enter__(self) -> ConcurrencyLimiter:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
