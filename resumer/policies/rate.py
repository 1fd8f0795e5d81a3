"""The rate limit: a token bucket shared by every thread.

Written here rather than taken from a library: the well-kept ones
(pyrate-limiter, limits) are built around buckets keyed by name with
pluggable storage, far more than one in-process bucket needs; and this one
takes an injected clock, so it is tested without sleeping.

Callers *reserve* the next free slot and then wait for it, so waiters are
served in order, never stampede, and the long-run rate never exceeds
``per_second`` (after the first ``burst`` calls).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from resumer.policies.retry import Stopped


class TokenBucket:
    """``per_second`` tokens a second, at most ``burst`` saved up.

    >>> bucket = TokenBucket(per_second=10, burst=2, clock=lambda: 0.0)
    >>> [bucket.reserve() for _ in range(4)]
    [0.0, 0.0, 0.1, 0.2]
    """

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be > 0 (no bucket means no limit)")
        self.per_second = per_second
        self.burst = max(1, burst)
        self.clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; return how long to wait before using it (0: at once)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def acquire(self, stop: threading.Event) -> None:
        """Wait for a token; ``Stopped`` if a stop comes first."""
        wait = self.reserve()
        if wait > 0 and stop.wait(wait):
            raise Stopped
