"""The fake API's rate limiter: nginx's ``limit_req ... nodelay``, and the rate-limit
headers that describe it.

``Faults.rate_limit`` puts nginx's ``limit_req ... nodelay`` in front of the
children endpoints (only them): one leaky bucket (``LeakyBucket``) for every
client, which lets ``burst + 1`` calls through at once and then one every
``1 / rate`` seconds, and refuses the rest at once with ``throttle_status``
(429 or 503) and, if set, ``Retry-After``. ``FakeAPI.set_rate`` and
``POST /_rate`` change it while serving; the bucket keeps what it holds.

Rate-limit headers (``Faults.rate_headers``) describe that bucket on every
children answer, refusals included, as a window that ends *reset* seconds
from now: *remaining* is how many calls it would still take if they came
spread over that window, ``floor(burst - excess + rate * reset)``, and the
*limit* is the same for an empty bucket. So a client that spreads *remaining*
over *reset* (as RFC-style clients do) paces at about ``rate``, and the window
never "restarts". ``"ratelimit"`` sends ``RateLimit-Limit``, ``-Remaining`` and
``-Reset: 1`` (seconds); ``"x-ratelimit"`` the same as ``X-RateLimit-*`` with
the reset as a Unix time (the whole second after the next); ``"draft"`` the IETF
draft's ``RateLimit-Policy: "default";q=limit;w=1`` and
``RateLimit: "default";r=remaining;t=1``. ``"bucket"`` describes the bucket
itself, in whole seconds, as many gateways do (both ``RateLimit-*`` and
``X-RateLimit-*``): the limit is ``burst``, the remaining the calls it takes
at once now, the reset the whole seconds until it is empty: a bucket of 100
calls a second and a burst of 10 says ``10``, ``9``, ``1`` while a client
sends at 9 calls a second, and at 90. No headers while the limit is off.

Owns: the bucket, its decisions and its headers. Must not: serve HTTP (``server``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

THROTTLE_STATUSES = (429, 503)
# The limiter in front of the children endpoints (``Faults.limiter``): nginx's leaky
# bucket, a fixed window, a sliding window that counts refused calls too, or a limit on
# the calls served at once (nginx ``limit_conn``, a servlet pool).
LIMITER_SHAPES = ("bucket", "window", "sliding", "concurrency")
RATE_HEADER_STYLES = ("ratelimit", "x-ratelimit", "draft", "bucket")
_SLACK = 1e-9  # requests: float noise must not refuse a call paced at exactly 1 / rate


class Decision(NamedTuple):
    """One call through a ``LeakyBucket``: taken or not, and the bucket at that moment."""

    accepted: bool
    excess: float  # requests in the bucket now, this call counted if it was taken
    rate: float  # requests a second
    burst: int


class LeakyBucket:
    """nginx's ``limit_req`` with ``nodelay``, for one key: a leaky bucket of requests.

    ``excess`` is how many requests the bucket holds; they leak out at ``rate``
    a second. A call adds one and is taken at once if that leaves at most
    ``burst``, as nginx computes it: ``max(0, excess - rate * elapsed + 1)``
    since the last taken call (the very first call leaves 0). A call that would
    overflow is refused and changes nothing. So an empty bucket takes
    ``burst + 1`` calls at once, then one every ``1 / rate`` seconds. The clock
    is injected so that tests need not sleep.

    >>> now = [100.0]
    >>> bucket = LeakyBucket(rate=1.0, burst=1, clock=lambda: now[0])
    >>> [bucket.take().accepted for _ in range(3)]
    [True, True, False]
    >>> now[0] += 1.0
    >>> bucket.take()
    Decision(accepted=True, excess=1.0, rate=1.0, burst=1)
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate  # requests a second; 0 takes every call and counts none
        self.burst = burst
        self.excess = 0.0  # requests held at ``last``
        self.last: float | None = None  # when the last call was taken (None: never)
        self._clock = clock
        self._lock = threading.Lock()

    def take(self) -> Decision:
        """Count one call now: taken, or refused with the state left as it was."""
        with self._lock:
            now = self._clock()
            if self.rate <= 0:
                return Decision(True, 0.0, self.rate, self.burst)
            if self.last is None:
                self.excess, self.last = 0.0, now
                return Decision(True, 0.0, self.rate, self.burst)
            drained = self.excess - self.rate * max(0.0, now - self.last)
            excess = max(0.0, drained + 1.0)
            if excess > self.burst + _SLACK:
                return Decision(False, max(0.0, drained), self.rate, self.burst)
            self.excess, self.last = excess, now
            return Decision(True, excess, self.rate, self.burst)

    def set_rate(self, rate: float, burst: int | None = None) -> None:
        """Change the rate (and the burst) from now on; what the bucket holds stays."""
        with self._lock:
            if self.last is not None:
                # leak at the old rate until now, so the new one applies from now on only
                now = self._clock()
                self.excess = max(0.0, self.excess - self.rate * max(0.0, now - self.last))
                self.last = now
            self.rate = rate
            if burst is not None:
                self.burst = burst


class WindowDecision(NamedTuple):
    """One call through a ``WindowLimiter``: taken or not, what is left of the window, and
    when a call may go again (Unix time)."""

    accepted: bool
    limit: int
    remaining: int
    reset_at: float  # the fixed window's end; the sliding one's oldest call leaving it


class WindowLimiter:
    """``limit`` calls a ``window`` of seconds. Fixed: windows start on whole multiples of
    ``window`` in Unix time, each counts the calls taken in it. Sliding: the calls of the
    last ``window`` seconds, *refused ones counted too* (as some load balancers count
    every request they see): a client that keeps knocking keeps it shut.

    >>> now = [100.0]
    >>> fixed = WindowLimiter(2, sliding=False, clock=lambda: now[0])
    >>> [fixed.take().accepted for _ in range(3)]
    [True, True, False]
    >>> now[0] = 101.0
    >>> fixed.take().accepted
    True
    """

    def __init__(
        self,
        limit: float,
        *,
        sliding: bool,
        window: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = max(1, math.floor(limit * window))
        self.window = window
        self.sliding = sliding
        self._clock = clock
        self._calls: deque[float] = deque()  # sliding: when each call of the window came
        self._start = -math.inf  # fixed: the window's start
        self._count = 0  # fixed: calls taken in it
        self._lock = threading.Lock()

    def take(self) -> WindowDecision:
        with self._lock:
            now = self._clock()
            return self._slide(now) if self.sliding else self._fixed(now)

    def _fixed(self, now: float) -> WindowDecision:
        start = now - now % self.window
        if start != self._start:
            self._start, self._count = start, 0
        accepted = self._count < self.limit
        self._count += accepted
        end = start + self.window
        return WindowDecision(accepted, self.limit, self.limit - self._count, end)

    def _slide(self, now: float) -> WindowDecision:
        calls = self._calls
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        accepted = len(calls) < self.limit
        calls.append(now)  # refused or not: it counts
        reset = calls[0] + self.window
        return WindowDecision(accepted, self.limit, max(0, self.limit - len(calls)), reset)

    def headers(self, decision: WindowDecision, epoch: float) -> tuple[tuple[str, str], ...]:
        """``X-RateLimit-*`` for the window, its reset as a Unix time (whole seconds, up)."""
        return (
            ("X-RateLimit-Limit", str(decision.limit)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(decision.reset_at))),
        )


def parse_limiter(text: str) -> str:
    """One of ``LIMITER_SHAPES``; ValueError on anything else."""
    shape = text.strip().lower()
    if shape not in LIMITER_SHAPES:
        raise ValueError(f"--limiter: expected one of {', '.join(LIMITER_SHAPES)}, got {text!r}")
    return shape


def rate_limit_headers(style: str, decision: Decision, epoch: float) -> tuple[tuple[str, str], ...]:
    """The rate-limit headers of ``style`` for the bucket in ``decision``, at Unix time ``epoch``
    (see the module's docstring); none when the limit is off."""
    if decision.rate <= 0 or not style:
        return ()
    if style == "bucket":
        left = str(max(0, math.floor(decision.burst - decision.excess + _SLACK)))
        reset = str(max(1, math.ceil(decision.excess / decision.rate - _SLACK)))
        limit_ = str(decision.burst)
        return (
            ("RateLimit-Limit", limit_),
            ("RateLimit-Remaining", left),
            ("RateLimit-Reset", reset),
            ("X-RateLimit-Limit", limit_),
            ("X-RateLimit-Remaining", left),
            ("X-RateLimit-Reset", reset),
        )
    end = math.floor(epoch) + 2 if style == "x-ratelimit" else epoch + 1
    window = end - epoch

    def calls(excess: float) -> int:
        return max(0, math.floor(decision.burst - excess + decision.rate * window + _SLACK))

    limit, remaining = calls(0.0), calls(decision.excess)
    if style == "ratelimit":
        return (
            ("RateLimit-Limit", str(limit)),
            ("RateLimit-Remaining", str(remaining)),
            ("RateLimit-Reset", "1"),
        )
    if style == "x-ratelimit":
        return (
            ("X-RateLimit-Limit", str(limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(end)),
        )
    return (
        ("RateLimit-Policy", f'"default";q={limit};w=1'),
        ("RateLimit", f'"default";r={remaining};t=1'),
    )


def parse_throttle_status(status: int) -> int:
    """429 or 503; ValueError on anything else."""
    if status not in THROTTLE_STATUSES:
        raise ValueError(f"--throttle-status: expected 429 or 503, got {status}")
    return status


def parse_rate_headers(text: str) -> str:
    """``"none"`` → ``""``, or one of ``RATE_HEADER_STYLES``; ValueError on anything else."""
    style = text.strip().lower()
    if style == "none":
        return ""
    if style not in RATE_HEADER_STYLES:
        choices = ", ".join(("none", *RATE_HEADER_STYLES))
        raise ValueError(f"--rate-headers: expected one of {choices}, got {text!r}")
    return style
