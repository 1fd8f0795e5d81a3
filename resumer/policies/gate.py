"""The gate every HTTP call passes: stop flag, breaker, the pacer (send rate), slot.

The caller runs its call inside ``with gate.slot() as outcome:`` and says how
it went (``outcome.kind``); on the way out the gate frees the slot and tells
the breaker, the pacer and the adaptive limit.
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
from resumer.policies.pacer import Pacer, RateLimits
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
    limits: RateLimits | None = None  # what the answer's rate-limit headers said
    rule: int | None = None  # the [[response.rule]] that decided the answer, if one did
    then: str | None = None  # and what it said (ok, empty, retry, throttle, fail, ...)


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
        pacer: Pacer | None = None,
        adaptive: AdaptiveLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop = stop
        self.limiter = limiter
        self.breaker = breaker
        self.pacer = pacer or Pacer(adaptive=False, clock=clock)
        self.adaptive = adaptive
        self.clock = clock
        # Told of every call: (level, how it went, seconds). Metrics, alerts and probe.
        self.observers: list[Callable[[int, CallOutcome, float], None]] = []

    def sheds_load(self) -> bool:
        """True if a 503 now means "too many" rather than "broken" (see ``Pacer.accepting``)."""
        return self.pacer.accepting()

    @contextmanager
    def slot(self, level: int = 0) -> Iterator[CallOutcome]:
        """One call's passage; ``level`` (of the node queried) labels what the observer sees."""
        if self.stop.is_set():
            raise Stopped
        probe = self.breaker.before_call(self.stop) if self.breaker else False
        try:
            self.pacer.acquire(self.stop)
            paced = self.clock()
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
            in_flight = self.limiter.in_flight
            self.limiter.release()
            latency = self.clock() - started
            self._record(outcome, probe, latency, paced, in_flight)
            for observe in self.observers:
                observe(level, outcome, latency)

    def _record(
        self, outcome: CallOutcome, probe: bool, latency: float, paced: float, in_flight: int
    ) -> None:
        kind = outcome.kind
        if self.breaker is not None:
            self.breaker.after_call(probe, failed=kind == FAILURE)
        self.pacer.record(
            sent=paced,
            throttled=kind == THROTTLE,
            success=kind == SUCCESS,
            failed=kind == FAILURE,
            retry_after=outcome.retry_after,
            limits=outcome.limits,
            in_flight=in_flight,
        )
        if self.adaptive is not None and kind != PERMANENT:
            self.adaptive.record(kind, latency)
