"""What the fake API saw, for tests and benchmarks: requests, answers, calls in flight.

Owns: the counters and the waits a test synchronises on ("the 50th request
arrived") instead of sleeping. Must not: serve HTTP (``server``).
"""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """What the server saw, for tests: requests received, answers per node id, peak in flight.

    ``wait_for`` lets a test synchronise on an event ("the 50th request arrived")
    instead of sleeping.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # children answered, per node id
        self.received = 0  # requests received (before any latency)
        self.closed = 0  # times the quota closed (``Faults.quota``)
        self.connections = 0  # TCP connections accepted
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses: Counter[int] = Counter()  # answers by status (0 = dropped)
        self.events: list[tuple[float, str, int]] | None = None  # (arrival, target, status)
        self.concurrency: list[int] | None = None  # calls in flight as each one arrived
        self._cond = threading.Condition()

    def keep_events(self) -> None:
        """Record every answer (time, request, status) and the calls in flight at each
        arrival (for tests; memory grows with the calls)."""
        self.events = []
        self.concurrency = []

    def connected(self) -> None:
        with self._cond:
            self.connections += 1

    def arrived(self) -> int:
        """Count a request in; return how many are in flight, this one included."""
        with self._cond:
            self.received += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.concurrency is not None:
                self.concurrency.append(self.in_flight)
            self._cond.notify_all()
            return self.in_flight

    def answered(self, arrived: float, target: str, status: int) -> None:
        """Note an answer to a request that arrived at ``arrived`` (status 0: dropped)."""
        with self._cond:
            self.statuses[status] += 1
            if self.events is not None:
                self.events.append((arrived, target, status))

    def left(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def record(self, node_id: str) -> None:
        with self._cond:
            self.calls[node_id] += 1

    def snapshot(self) -> Counter[str]:
        with self._cond:
            return Counter(self.calls)

    def wait_for(self, received: int, timeout: float) -> bool:
        """Block until ``received`` requests have arrived; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self.received >= received, timeout)

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until every request that arrived has been answered (a slow answer is
        counted when it is sent, maybe after the client gave up on it)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.in_flight == 0, timeout)
