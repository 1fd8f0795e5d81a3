"""The circuit breaker: stop calling a server that keeps failing, and wait instead.

closed ──(``failure_threshold`` consecutive failures)──► open
open ──(its time passed)──► half-open: one probe call goes through
half-open ──probe answers──► closed   /   ──probe fails──► open again, for twice as long

It probes early and backs off: the first probe comes ``FIRST_PROBE`` seconds after
it opens, each failed probe doubles the wait, up to ``reset_timeout``. A backend
restart of a few seconds costs a few seconds, not ``reset_timeout``; a long outage
still sees only a handful of probes (1, 2, 4, 8, 16 s, then one every
``reset_timeout``).

While the breaker is not closed, callers *wait* in ``before_call``: no attempt
is spent and no node fails because the server had a bad minute. Only
transient failures count (5xx, timeouts, dropped connections); a 4xx or a
throttle is an answer, and an answer closes a half-open breaker.
The lock is never held during a call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from resumer.policies.retry import Stopped

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
FIRST_PROBE = 1.0  # seconds open before the first probe (reset_timeout, if shorter)
_RECHECK = 0.1  # seconds: the longest a waiter sleeps before looking at the stop flag


class CircuitBreaker:
    """Thread-safe; time comes from ``clock`` so tests need not wait.

    >>> breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30.0)
    >>> probe = breaker.before_call(threading.Event())   # closed: goes at once
    >>> breaker.after_call(probe, failed=True); breaker.after_call(probe, failed=True)
    >>> breaker.state
    'open'
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._state = CLOSED
        self._failures = 0  # consecutive
        self._opened_at = 0.0
        self._open_for = 0.0  # seconds this opening lasts: FIRST_PROBE, doubled per failed probe
        self._probing = False
        self._cond = threading.Condition()
        self.opened = 0  # how many times it opened (for figures and tests)

    @property
    def state(self) -> str:
        with self._cond:
            self._tick()
            return self._state

    def permit(self) -> tuple[bool, bool, float]:
        """Decide for one call now: (go, is_probe, seconds to wait if not go)."""
        with self._cond:
            return self._permit()

    def _permit(self) -> tuple[bool, bool, float]:
        self._tick()
        if self._state == CLOSED:
            return True, False, 0.0
        if self._state == HALF_OPEN and not self._probing:
            self._probing = True
            return True, True, 0.0
        wait = self._opened_at + self._open_for - self.clock() if self._state == OPEN else 0.0
        return False, False, max(0.0, min(wait, _RECHECK)) or _RECHECK

    def before_call(self, stop: threading.Event) -> bool:
        """Wait until a call may go; return True if it is the half-open probe."""
        if self._state == CLOSED:  # the usual case, read without the lock (one load)
            if stop.is_set():
                raise Stopped
            return False
        with self._cond:
            while True:
                if stop.is_set():
                    raise Stopped
                go, probe, wait = self._permit()
                if go:
                    return probe
                self._cond.wait(wait)

    def after_call(self, probe: bool, *, failed: bool) -> None:
        """Record how a call that ``before_call`` let through ended."""
        if not (probe or failed) and self._state == CLOSED and not self._failures:
            return  # a success that changes nothing: the lock is not taken
        with self._cond:
            before = self._state
            if probe:
                self._probing = False
            if failed:
                self._failures += 1
                if probe or (self._state == CLOSED and self._failures >= self.failure_threshold):
                    self._open()
            elif probe or self._state == CLOSED:
                if self._state != CLOSED:
                    log.warning("breaker closed: the server answers again")
                self._state = CLOSED
                self._failures = 0
            if probe or self._state != before:  # what the waiting calls wait for changed
                self._cond.notify_all()

    def abandon(self, probe: bool) -> None:
        """A permitted call was not made after all (a stop came): free the probe."""
        if probe:
            with self._cond:
                self._probing = False
                self._cond.notify_all()

    def _open(self) -> None:
        if self._state == CLOSED:
            self._open_for = min(FIRST_PROBE, self.reset_timeout)
            log.warning(
                "breaker open: %d transient failures in a row; calls wait %.1fs, then one probe",
                self._failures,
                self._open_for,
            )
            self.opened += 1
        else:
            self._open_for = min(2 * self._open_for, self.reset_timeout)
            log.warning(
                "breaker open again: the probe call failed; next probe in %.1fs", self._open_for
            )
        self._state = OPEN
        self._opened_at = self.clock()

    def _tick(self) -> None:
        if self._state == OPEN and self.clock() - self._opened_at >= self._open_for:
            self._state = HALF_OPEN
            log.warning("breaker half-open: letting one probe call through")
