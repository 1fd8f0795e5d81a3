"""The gate every HTTP call passes: stop flag, breaker, Retry-After pause, rate, slot.

The caller runs its call inside ``with gate.slot() as outcome:`` and says how
it went (``outcome.kind``); on the way out the gate frees the slot and tells
the breaker, the pause and the adaptive limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from resumer.policies.breaker import CircuitBreaker
from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter
from resumer.policies.rate import TokenBucket
from resumer.policies.retry import Stopped

log = logging.getLogger(__name__)

SUCCESS, THROTTLE, FAILURE, PERMANENT = "success", "throttle", "failure", "permanent"


@dataclass
class CallOutcome:
    """How one call went, filled in by the caller inside the slot.

    ``kind``: success (an answer we can use), throttle (429, 503 with
    Retry-After: the server is fine but busy), failure (5xx, timeout, dropped
    connection: the breaker counts these), permanent (4xx, a malformed body).
    """

    kind: str = PERMANENT  # a call that raises before saying is not held against the server
    retry_after: float | None = None
    status: int | None = None  # the HTTP status, when there was an answer


class Gate:
    """The policies one HTTP call goes through, in the documented order.

    >>> gate = Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(4))
    >>> with gate.slot() as outcome:
    ...     outcome.kind = "success"
    """

    def __init__(
        self,
        *,
        stop: threading.Event,
        limiter: ConcurrencyLimiter,
        breaker: CircuitBreaker | None = None,
        bucket: TokenBucket | None = None,
        adaptive: AdaptiveLimit | None = None,
        max_pause: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop = stop
        self.limiter = limiter
        self.breaker = breaker
        self.bucket = bucket
        self.adaptive = adaptive
        self.max_pause = max_pause
        self.clock = clock
        # Told of every call: (level, kind, HTTP status, seconds). Metrics and alerts.
        self.observers: list[Callable[[int, str, int | None, float], None]] = []
        self._paused_until = 0.0
        self._paused_at = -1e9
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, level: int = 0) -> Iterator[CallOutcome]:
        """One call's passage; ``level`` (of the node queried) labels what the observer sees."""
        if self.stop.is_set():
            raise Stopped
        probe = self.breaker.before_call(self.stop) if self.breaker else False
        try:
            self._wait_for_pause()
            if self.bucket is not None:
                self.bucket.acquire(self.stop)
            self.limiter.acquire()
            if self.stop.is_set():
                self.limiter.release()
                raise Stopped
        except BaseException:
            if self.breaker is not None:
                self.breaker.abandon(probe)  # no call was made: nothing to learn from
            raise
        outcome = CallOutcome()
        started = self.clock()
        try:
            yield outcome
        finally:
            self.limiter.release()
            latency = self.clock() - started
            self._record(outcome, probe, latency)
            for observe in self.observers:
                observe(level, outcome.kind, outcome.status, latency)

    def _record(self, outcome: CallOutcome, probe: bool, latency: float) -> None:
        if self.breaker is not None:
            self.breaker.after_call(probe, failed=outcome.kind == FAILURE)
        if outcome.kind == THROTTLE and outcome.retry_after:
            self._pause(min(outcome.retry_after, self.max_pause), sent=self.clock() - latency)
        if self.adaptive is not None and outcome.kind != PERMANENT:
            self.adaptive.record(outcome.kind, latency)

    def _pause(self, seconds: float, sent: float) -> None:
        """The server said when to come back: no call goes out before then.

        A call sent before the last pause began tells nothing new (the pause
        already answers it), so it does not stretch the pause.
        """
        with self._lock:
            if sent < self._paused_at:
                return
            now = self.clock()
            until = now + seconds
            if until > self._paused_until:
                if self._paused_until <= now:
                    log.info(
                        "server asked to wait %.2fs (Retry-After): pausing every call", seconds
                    )
                    self._paused_at = now
                self._paused_until = until

    def _wait_for_pause(self) -> None:
        while True:
            wait = self._paused_until - self.clock()
            if wait <= 0:
                return
            if self.stop.wait(wait):
                raise Stopped

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self.clock())
