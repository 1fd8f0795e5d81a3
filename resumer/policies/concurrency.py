"""How many HTTP calls may be in flight: a hard cap, and optionally a floating one.

``ConcurrencyLimiter`` is the cap shared by every level's workers.
``AdaptiveLimit`` moves that cap between ``minimum`` and ``maximum`` (AIMD,
after TCP congestion control and Netflix's concurrency-limits):

- slow start: +1 per success until the first sign of overload;
- overload (429, 503, a timeout, a dropped connection, or latency more than
  twice its baseline): the limit drops to 80%. Only calls sent after the last
  drop count, so N calls refused together shrink it once. A throttle (429,
  503 with Retry-After) says where the server's capacity is: the limit in
  force becomes the ceiling. Slow answers and failures (5xx, timeouts) say
  less (a noisy moment, a broken backend) and leave the ceiling alone;
- below the ceiling, +1 per ``limit`` successes (about one per round trip);
  past it, 128 times more slowly, and twice more slowly again each time a
  probe past the same ceiling is refused. A probe costs about one round
  trip of refused calls, so against a server that answers 429 past K calls
  the limit sits at K and fewer than 1% of calls are refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

DECREASE = 0.8  # factor applied to the limit on overload
PROBE_SLOWDOWN = 128  # how much more slowly the limit grows past its ceiling, at first
MAX_PROBE_SLOWDOWN = 8192  # ... and at most, after repeated refusals at the same ceiling
LATENCY_FACTOR = 2.0  # latency this many times the baseline means overload
LATENCY_SLACK = 0.005  # seconds added to that threshold, so tiny latencies don't jitter it
MIN_WINDOW = 0.01  # seconds: the shortest time between two decreases


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
        self._waiting = 0  # threads waiting for a slot: a release wakes one only if there are
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def set_limit(self, limit: int) -> None:
        with self._cond:
            grew = limit > self._limit
            self._limit = max(1, limit)
            if grew:
                self._cond.notify_all()

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self._limit:
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            self._in_flight += 1

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            if self._waiting:
                self._cond.notify()

    def __enter__(self) -> ConcurrencyLimiter:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class AdaptiveLimit:
    """Moves a limiter's limit with the server's health (see the module docstring).

    >>> limiter = ConcurrencyLimiter(1)
    >>> adaptive = AdaptiveLimit(limiter, minimum=1, maximum=8, clock=lambda: 0.0)
    >>> for _ in range(3):
    ...     adaptive.record("success", 0.01)
    >>> limiter.limit
    4
    """

    def __init__(
        self,
        limiter: ConcurrencyLimiter,
        minimum: int,
        maximum: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.minimum = minimum
        self.maximum = maximum
        self.clock = clock
        self._limit = float(minimum)
        self._ceiling = float(maximum)
        self._probe_slowdown = PROBE_SLOWDOWN
        self._slow_start = True
        self._baseline: float | None = None  # the lowest latency seen, slowly forgotten
        self._smoothed: float | None = None
        self._last_decrease = -1e9
        self._lock = threading.Lock()
        limiter.set_limit(minimum)

    def record(self, kind: str, latency: float) -> None:
        """One call ended: ``kind`` is success, throttle, failure or permanent."""
        with self._lock:
            stale = self.clock() - latency < self._last_decrease  # sent before the last drop
            if kind == "success" and (stale or not self._latency_climbed(latency)):
                self._increase()
            elif stale:
                return  # an overload signal about the old limit, already acted upon
            elif kind == "throttle":
                self._decrease(capacity_signal=True)  # "too many": its capacity is about here
            else:
                # Slow answers or failures: back off, but they say little about capacity
                # (a noisy moment, a broken backend), so the ceiling stays.
                self._decrease(capacity_signal=False)
            self.limiter.set_limit(int(self._limit))

    def _latency_climbed(self, latency: float) -> bool:
        if self._baseline is None or self._smoothed is None:
            self._baseline = self._smoothed = latency
            return False
        self._baseline = min(latency, self._baseline + (latency - self._baseline) * 0.001)
        self._smoothed += (latency - self._smoothed) * 0.1
        return self._smoothed > self._baseline * LATENCY_FACTOR + LATENCY_SLACK

    def _decrease(self, *, capacity_signal: bool) -> None:
        now = self.clock()
        if now - self._last_decrease < MIN_WINDOW:
            return
        self._last_decrease = now
        self._slow_start = False
        self._smoothed = self._baseline  # latency must climb again to count again
        if capacity_signal:
            ceiling = float(max(self.minimum, int(self._limit)))  # the limit in force
            same_ceiling = abs(ceiling - self._ceiling) < 1.0
            self._probe_slowdown = (
                min(self._probe_slowdown * 2, MAX_PROBE_SLOWDOWN)
                if same_ceiling
                else PROBE_SLOWDOWN
            )
            self._ceiling = ceiling
        self._limit = max(float(self.minimum), self._limit * DECREASE)
        log.info("concurrency limit down to %d (ceiling %d)", int(self._limit), int(self._ceiling))

    def _increase(self) -> None:
        if self._slow_start:
            step = 1.0
        elif self._limit < self._ceiling - 1:
            step = 1.0 / self._limit
        else:
            step = 1.0 / (self._limit * self._probe_slowdown)
        self._limit = min(float(self.maximum), self._limit + step)
        if self._limit >= self._ceiling + 1:  # a probe held: the server takes more now
            self._ceiling = self._limit
            self._probe_slowdown = PROBE_SLOWDOWN
