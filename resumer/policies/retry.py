"""The retry policy: which failures are retried, how often, and how long to wait.

Full-jitter exponential backoff, ``wait = uniform(0, min(max, initial *
multiplier ** (n - 1)))`` before retry n, unless the server said when to come
back (``Retry-After``), which is honoured up to ``max``. Built on tenacity.

A throttle (``QueryError.throttled``) can be handed back to the caller
instead of waited out in its thread (``call(..., park=True)``): the runner
then parks the node for ``delay`` and its worker goes on with other nodes,
so a Retry-After delays the refused call, never the crawl.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar, cast

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from resumer.errors import QueryError, Stopped, Throttled  # defined there, imported from here too
from resumer.policies.defaults import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BACKOFF_MULTIPLIER,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class NodeLabel(NamedTuple):
    """Which node a retried query is for: printed in messages, and given to the logs as
    context (``extra``) so each line carries the level and the node."""

    level: int
    id: str

    def __str__(self) -> str:
        return f"level {self.level} id {self.id!r}"

    def context(self) -> dict[str, object]:
        return {"tree_level": self.level, "node": self.id}


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, QueryError) and error.transient


def _is_transient_unthrottled(error: BaseException) -> bool:
    return _is_transient(error) and not getattr(error, "throttled", False)


class _Attempt(NamedTuple):
    """The one field of tenacity's call state its exponential waits read."""

    attempt_number: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a transient failure is retried.

    >>> retrier = RetryPolicy(attempts=3, initial=0.01, maximum=0.05).bind(threading.Event())
    >>> retrier.call(lambda: 42, "F1")
    42
    """

    attempts: int = DEFAULT_ATTEMPTS  # calls in all, the first included
    initial: float = DEFAULT_BACKOFF_INITIAL  # seconds: the first backoff's upper bound
    maximum: float = DEFAULT_BACKOFF_MAX  # seconds: the largest wait, Retry-After included
    multiplier: float = DEFAULT_BACKOFF_MULTIPLIER

    def bind(self, stop: threading.Event, sleep: Callable[[float], bool] | None = None) -> Retrier:
        """A retrier whose waits end early (raising ``Stopped``) when ``stop`` is set.

        ``sleep(seconds)`` waits and returns True if stopped (default: ``stop.wait``).
        """
        return Retrier(self, stop, sleep)


class _Replay(Generic[T]):
    """Raises an already-met failure on its first call, then calls ``fn``."""

    def __init__(self, fn: Callable[[], T], first: BaseException) -> None:
        self._fn = fn
        self._first: BaseException | None = first

    def __call__(self, _label: object) -> T:
        if self._first is not None:
            error, self._first = self._first, None
            raise error
        return self._fn()


class Retrier:
    """Applies a ``RetryPolicy``; one instance serves every thread.

    tenacity keeps each call's state thread-local, so the ``Retrying`` object
    is built once rather than once per query.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        stop: threading.Event,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.policy = policy
        self._wait_or_stop = sleep or stop.wait
        self._backoff = wait_random_exponential(
            multiplier=policy.initial, max=policy.maximum, exp_base=policy.multiplier
        )
        self._retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        self._parking = self._retrying.copy(retry=retry_if_exception(_is_transient_unthrottled))

    def call(
        self, fn: Callable[[], T], label: NodeLabel | str, *, made: int = 0, park: bool = False
    ) -> T:
        """Run ``fn`` until it succeeds, fails for good, runs out of attempts or a stop comes.

        ``made``: attempts already made for this call (before it was parked).
        ``park``: a throttled attempt with attempts left raises ``Throttled``
        (how long to wait) instead of waiting here.

        The first attempt runs bare: most calls succeed, and tenacity's
        bookkeeping is only worth its cost once one has failed. tenacity then
        replays that failure as its attempt 1, so numbering and waits are its own.
        """
        left = self.policy.attempts - made
        try:
            return fn()
        except QueryError as error:
            if not error.transient or left <= 1:
                raise
            if park and error.throttled:  # the usual parking: no tenacity round for it
                raise Throttled(error, self.delay(error, made + 1)) from error
            first = error
        retrying = self._parking if park else self._retrying
        if made:
            retrying = retrying.copy(stop=stop_after_attempt(left))
        try:
            result: T = retrying(_Replay(fn, first), label)
        except QueryError as error:
            number = made + retrying.statistics.get("attempt_number", 1)
            if park and error.throttled and error.transient and number < self.policy.attempts:
                raise Throttled(error, self.delay(error, number)) from error
            raise
        return result

    def delay(self, error: BaseException | None, number: int) -> float:
        """Seconds to wait after failed attempt ``number``: the server's Retry-After (up to
        ``maximum``), else the backoff."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.policy.maximum))
        return float(self._backoff(cast(RetryCallState, _Attempt(number))))

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.delay(error, state.attempt_number)

    def _sleep(self, seconds: float) -> None:
        if self._wait_or_stop(seconds):
            raise Stopped

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        label = state.args[0]
        log.info(
            "retry %s: attempt %d of %d failed (%s); waiting %.2fs",
            label,
            state.attempt_number,
            self.policy.attempts,
            error,
            state.upcoming_sleep,
            extra=label.context() if isinstance(label, NodeLabel) else None,
        )


__all__ = ["NodeLabel", "Retrier", "RetryPolicy", "Stopped", "Throttled"]
