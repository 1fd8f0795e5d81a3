"""Deadlines for whole HTTP calls: one watchdog thread ends the calls that overrun them.

httpx's timeouts bound each operation (a connect, one read), so a server that
drips a byte a second holds a call for as long as it likes. Here a ``Watch``
is the deadline of the call on one connection, with that connection's socket;
a ``Watchdog`` is one daemon thread (per ``ClientPool``, started by the first
deadline) that shuts down the socket of a call past its deadline. The read
blocked on it then fails at once: ``shutdown()`` wakes a read blocked in
another thread, ``close()`` does not (on Linux it waits out its own timeout).

The call that owns a watch brackets itself with ``start`` and ``stop``: two
short critical sections, no allocation. The watchdog sleeps until the earliest
deadline in flight (for ever when nothing is in flight) and scans only the
calls in flight when it wakes.

This module knows nothing of httpx, retries or the database: the pool
translates a call that ``stop`` reports as overdue into a timeout.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable

NEVER = math.inf
COALESCE = 0.01  # seconds: the watchdog wakes at most this often, however many calls end
CLOSE_WAIT = 1.0  # seconds ``close`` waits for the thread to end


class Watch:
    """The deadline of the call on one connection, and the socket it is using.

    Made once per connection and reused by every call on it.
    """

    __slots__ = ("deadline", "overdue", "socket")

    def __init__(self) -> None:
        self.deadline = NEVER  # monotonic seconds; NEVER when no call is in flight
        self.overdue = False  # the watchdog ended the current call
        self.socket: socket.socket | None = None

    def attach(self, sock: socket.socket | None) -> None:
        """The connection's socket, noted when it connects (or starts TLS)."""
        self.socket = sock
        if self.overdue:  # the watchdog came while this socket was being made
            shut(sock)


def shut(sock: socket.socket | None) -> None:
    """Shut ``sock`` down both ways, so a read blocked on it returns at once."""
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed, or never connected
        # The plain socket's method, also for an SSLSocket: its own shutdown() unwraps
        # TLS state that the thread reading it is still using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Shuts down the socket of any watched call still running past its deadline.

    >>> dog = Watchdog()
    >>> watch = Watch()                         # one per connection
    >>> dog.start(watch, dog.clock() + 10.0)   # before the call
    >>> dog.stop(watch)                         # after it: True if it was cut short
    False
    >>> dog.close()
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        coalesce: float = COALESCE,
        thread: bool = True,
    ) -> None:
        """``thread=False``: no thread; the caller drives ``step(now)`` (tests do)."""
        self.clock = clock
        self._coalesce = coalesce
        self._threaded = thread
        self._active: set[Watch] = set()  # calls in flight with a deadline
        self._cond = threading.Condition(threading.Lock())
        self._wake_at = NEVER  # when the thread will look next
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> int:
        """Calls in flight with a deadline."""
        return len(self._active)

    def start(self, watch: Watch, deadline: float) -> None:
        """``watch``'s call must end by ``deadline`` (on ``clock``); NEVER watches nothing."""
        with self._cond:
            watch.overdue = False
            if deadline == NEVER:
                return
            watch.deadline = deadline
            self._active.add(watch)
            # Rare: the first call, or a shorter timeout. A deadline just before the next
            # wake-up waits for it: calls are cut ``coalesce`` late at most.
            if deadline + self._coalesce < self._wake_at:
                self._wake_at = deadline
                if self._thread is None and self._threaded:
                    self._thread = threading.Thread(
                        target=self._run, name="resumer-deadlines", daemon=True
                    )
                    self._thread.start()
                self._cond.notify()

    def stop(self, watch: Watch) -> bool:
        """The call has ended; True if the watchdog cut it short (its socket is shut)."""
        with self._cond:
            self._active.discard(watch)
            watch.deadline = NEVER
            return watch.overdue

    def step(self, now: float) -> float:
        """Cut short every call past its deadline at ``now``; the next deadline (or NEVER)."""
        with self._cond:
            return self._step(now)

    def _step(self, now: float) -> float:
        following = NEVER
        for watch in list(self._active) if self._active else ():
            if watch.deadline <= now:
                self._active.discard(watch)
                watch.deadline = NEVER
                watch.overdue = True
                shut(watch.socket)
            elif watch.deadline < following:
                following = watch.deadline
        return following

    def _run(self) -> None:
        me = threading.current_thread()
        with self._cond:
            while self._thread is me:
                now = self.clock()
                following = self._step(now)
                # Not sooner than ``coalesce`` from now: calls ending one after the other
                # are cut in batches, not one wake-up each.
                self._wake_at = max(following, now + self._coalesce)
                wait = None if following == NEVER else self._wake_at - now
                self._cond.wait(wait)

    def close(self) -> None:
        """End the thread (a later ``start`` makes a new one)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._wake_at = NEVER
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_WAIT)
