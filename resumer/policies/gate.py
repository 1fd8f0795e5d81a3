"""The gate every HTTP call passes: stop flag, breaker, the pacer (send rate), slot.

The caller runs its call inside ``with gate.slot() as outcome:`` and says how
it went (``outcome.kind``); on the way out the gate frees the slot and tells
the breaker, the pacer and the adaptive limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from resumer.policies.breaker import CircuitBreaker
from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter
from resumer.policies.pacer import Pacer, RateLimits
from resumer.policies.retry import Stopped

log = logging.getLogger(__name__)

SUCCESS, THROTTLE, FAILURE, PERMANENT = "success", "throttle", "failure", "permanent"


@dataclass(slots=True)
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

    def slot(self, level: int = 0) -> _Passage:
        """One call's passage; ``level`` (of the node queried) labels what the observer sees."""
        return _Passage(self, level)

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


class _Passage:
    """``Gate.slot``'s context: in, the checks in order and a slot held; out, the slot
    freed and the policies and observers told how the call went. A class, not a
    generator: this runs on every call, and a generator's context costs twice as much."""

    __slots__ = ("gate", "level", "outcome", "paced", "probe", "started")

    def __init__(self, gate: Gate, level: int) -> None:
        self.gate = gate
        self.level = level

    def __enter__(self) -> CallOutcome:
        gate = self.gate
        if gate.stop.is_set():
            raise Stopped
        probe = gate.breaker.before_call(gate.stop) if gate.breaker else False
        try:
            gate.pacer.acquire(gate.stop)
            self.paced = gate.clock()
            gate.limiter.acquire()
            if gate.stop.is_set():
                gate.limiter.release()
                raise Stopped
        except BaseException:
            if gate.breaker is not None:
                gate.breaker.abandon(probe)  # no call was made: nothing to learn from
            raise
        self.probe = probe
        self.outcome = CallOutcome()
        self.started = gate.clock()
        return self.outcome

    def __exit__(self, *exc: object) -> None:
        gate, outcome = self.gate, self.outcome
        in_flight = gate.limiter.in_flight
        gate.limiter.release()
        latency = gate.clock() - self.started
        gate._record(outcome, self.probe, latency, self.paced, in_flight)
        for observe in gate.observers:
            observe(self.level, outcome, latency)
