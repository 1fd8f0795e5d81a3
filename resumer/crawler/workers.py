"""The worker side of a run: threads that query, and the queues between them and the
coordinator.

Per queried level, a pool of threads takes claimed tasks from that level's queue,
asks the client for the node's children and puts what came of it on the one
results queue: the children, a failure, a release (back to pending), or a parked
task (throttled: it waits out its delay on the coordinator's heap while its worker
goes on with the next task).

Owns: the threads, the level queues, the results queue, the parked tasks, and what
one query's outcome becomes (``Workers._query``, ``Workers._server_trouble``).

Must not: touch the store (only the coordinator, ``runner.Runner``, does: so no
transaction is ever open during an HTTP call), let an exception end a thread
silently (every claimed task comes back as a result, or the coordinator would wait
for ever; a thread that dies anyway is reported), or wait on the server's behalf.

Tested by tests/integration/test_watchdog.py, tests/integration/test_parking.py,
tests/integration/test_runner.py and tests/integration/test_resilience.py.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import NoReturn, Protocol, TypeGuard

from resumer import _crashpoints
from resumer.crawler.policyset import Policies
from resumer.errors import AuthError, QueryError, describe
from resumer.job.settings import Job
from resumer.job.template import Redactor
from resumer.model import Children, Failure, Item, Parked, Release, Result, Streamed, Task
from resumer.policies.breaker import CLOSED
from resumer.policies.retry import NodeLabel, Stopped, Throttled

log = logging.getLogger(__name__)

POLL = 0.25  # seconds the coordinator waits for a result before re-checking the stop flag
GATHER = 0.002  # seconds spent gathering more results into one commit once one has arrived
RELEASES = 10  # a node the server keeps throttling fails after this many rounds of attempts

_WAKE = object()  # put on the results queue to wake the coordinator
_EXITED = object()  # put on the results queue by a worker as its last act


class QueryClient(Protocol):
    """What a run asks of its client (``query.client.Client``; tests pass fakes): the level-1
    items, and one node's children. A client whose ``items_are_checked`` is True vouches
    that its items are Items of strings; any other's are checked (``_checked``)."""

    def load_roots(self) -> Iterable[Item]: ...

    def query(self, task: Task, timeout: float) -> list[Item] | Streamed: ...


class Workers:
    """The worker threads of every queried level, fed and drained by the coordinator.

    >>> workers = Workers(job, client, policies, on_refused=print)  # doctest: +SKIP
    >>> workers.start()                                       # doctest: +SKIP
    >>> workers.give(task)                                    # doctest: +SKIP
    >>> workers.collect(1024, wait=True)                      # doctest: +SKIP
    [Children(...)]
    """

    def __init__(
        self,
        job: Job,
        client: QueryClient,
        policies: Policies,
        *,
        on_refused: Callable[[AuthError], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.client = client
        # A client that says its items are Items of strings is believed (the project's own,
        # whose mapper makes them so); any other's are checked, item by item.
        self._trusted = getattr(client, "items_are_checked", False) is True
        self.policies = policies
        self.clock = clock
        self.stop_event = policies.stop
        self._on_refused = on_refused  # credentials refused: the run stops (any thread)
        self._results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queues: dict[int, queue.SimpleQueue[Task | None]] = {
            level: queue.SimpleQueue() for level in job.queried_levels
        }
        self._timeouts = {level: job.level(level).timeout for level in job.queried_levels}
        self._parked: list[tuple[float, int, Task]] = []  # (due, order, task): throttled, a heap
        self._park_order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._exited = 0  # workers that have said they are done
        self._deaths: list[tuple[str, BaseException]] = []  # workers ended by an error: which, why

    # -- the coordinator's side ------------------------------------------------

    def start(self) -> None:
        for level in self._queues:
            for number in range(self.job.level(level).workers):
                thread = threading.Thread(
                    target=self._work, args=(level,), name=f"level{level}-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def give(self, task: Task) -> None:
        """Queue a claimed task for its level's workers."""
        self._queues[task.level].put(task)

    def queued(self, level: int) -> int:
        """Tasks waiting in the level's queue (claimed, not yet taken by a worker)."""
        return self._queues[level].qsize()

    def wake(self) -> None:
        """Wake the coordinator if it waits in ``collect`` (safe in a signal handler)."""
        self._results.put(_WAKE)

    def collect(self, limit: int, *, wait: bool) -> list[Result]:
        """Take the results that have arrived, ``limit`` at most; if ``wait``, first wait up
        to POLL for one, then let GATHER pass so that one commit carries many results (and
        the coordinator is woken once per batch, not once per result)."""
        results: list[Result] = []
        try:
            timeout = self._poll_timeout() if wait else 0.0
            item = self._results.get(timeout=timeout) if timeout else self._results.get_nowait()
        except queue.Empty:
            return results
        if wait:
            self.stop_event.wait(GATHER)
        while True:
            if item is _EXITED:
                self._exited += 1
            elif type(item) is Parked:
                heapq.heappush(self._parked, (item.due, next(self._park_order), item.task))
            elif item is not _WAKE:
                results.append(item)  # type: ignore[arg-type]
            if len(results) >= limit:
                return results
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return results

    def unpark(self) -> None:
        """Hand the parked tasks whose wait is over back to their level's workers."""
        now = self.clock()
        while self._parked and self._parked[0][0] <= now:
            _, _, task = heapq.heappop(self._parked)
            self.give(task)

    def _poll_timeout(self) -> float:
        """How long the coordinator may wait for a result: POLL, or less if a parked task
        comes due sooner."""
        if not self._parked:
            return POLL
        return min(POLL, max(0.0, self._parked[0][0] - self.clock()))

    def check(self) -> None:
        """Raise for a worker thread that ended before the shutdown (a bug in the loop
        around the queries): its node would stay outstanding, so waiting would be for ever."""
        if self._exited:
            self._died()

    def _died(self) -> NoReturn:
        name, error = self._deaths[0] if self._deaths else ("?", None)
        why = describe(error) if error is not None else "no error said"
        raise RuntimeError(f"worker thread {name} ended unexpectedly ({why})") from error

    def finish(self) -> None:
        """Tell every worker to end once it has taken the tasks queued before this."""
        for level, work in self._queues.items():
            for _ in range(self.job.level(level).workers):
                work.put(None)

    @property
    def running(self) -> bool:
        """Some worker has not yet said it is done (as far as ``collect`` has seen)."""
        return self._exited < len(self._threads)

    # -- the workers' side -----------------------------------------------------

    def _work(self, level: int) -> None:
        try:
            while self.work_one(level):
                pass
        except BaseException as error:  # no caller above this thread: the coordinator is told
            self._deaths.append((threading.current_thread().name, error))
        finally:
            self._results.put(_EXITED)  # the coordinator counts these to end the run

    def work_one(self, level: int) -> bool:
        """Take the level's next task (waiting for one), query it and put what came of it
        on the results queue: one iteration of a worker thread. False when told to end."""
        task = self._queues[level].get()
        if task is None:
            return False
        if not self.stop_event.is_set():  # else claimed but unsent: reset to pending at shutdown
            self._results.put(self._query(task, self._timeouts[level]))
        return True

    def _query(self, task: Task, timeout: float) -> Result | Parked:
        attempts = task.tries

        def attempt() -> list[Item] | Streamed:
            nonlocal attempts
            attempts += 1
            items = self.client.query(task, timeout)
            _crashpoints.hit("after_http")
            return items

        label = NodeLabel(task.level, task.id)
        retrier = self.policies.retrier(task.level)
        try:
            items = retrier.call(attempt, label, made=task.tries, park=True)
            if not self._trusted:
                items = _checked(items)
        except Throttled as throttled:  # the wait is the node's, not this worker's
            if self.stop_event.is_set():
                return Release(task.node, task.level, attempts)
            log.info(
                "retry %s: attempt %d of %d throttled (%s); again in %.2fs",
                label,
                attempts,
                retrier.policy.attempts,
                throttled.error,
                throttled.delay,
                extra=label.context(),
            )
            return Parked(task._replace(tries=attempts), self.clock() + throttled.delay)
        except Stopped:
            return Release(task.node, task.level, attempts)
        except AuthError as exc:  # never the node's fault: it waits, and the run stops
            self._on_refused(exc)
            return Release(task.node, task.level, attempts)
        except QueryError as exc:
            if self._server_trouble(exc, task, attempts):
                log.info("%s back to pending: %s", label, exc, extra=label.context())
                return Release(task.node, task.level, attempts)
            return Failure(task.node, task.level, str(exc), attempts, task.id)
        except BaseException as exc:
            # A bug (the client's, a policy's) fails the node, never the run: every claimed
            # node must come back as a result, or the coordinator would wait for ever. Even a
            # KeyboardInterrupt: signals reach the main thread only, so here code raised it.
            # The WARNING line is the failure's (the coordinator's); the traceback is for DEBUG.
            log.debug("internal error querying %s", label, exc_info=exc, extra=label.context())
            error = internal_error(self.client, exc)
            return Failure(task.node, task.level, error, attempts, task.id)
        return Children(task.node, task.level, items, attempts)

    def _server_trouble(self, error: QueryError, task: Task, attempts: int) -> bool:
        """True if a query that ran out of attempts should wait for later, not fail.

        The server kept saying "too many" (``QueryError.throttled``): a throttle
        never fails a node, however long it lasts (a run that gets nothing else
        for ``[rate] max_pause`` stops: the pacer's business). Or the server was
        down (the breaker is not closed, or it said 503: an outage's first 503s
        look like load shed until errors are all there is): not the node's
        fault either, so it goes back to pending, up to RELEASES times its
        attempts in all, then fails.
        """
        if not error.transient:
            return False
        if error.throttled:
            return True
        budget = RELEASES * self.policies.retrier(task.level).policy.attempts
        if task.attempts + attempts >= budget:
            return False
        return error.status == 503 or self.policies.breaker.state != CLOSED


def internal_error(client: object, error: BaseException) -> str:
    """A node's error for a bug: "internal error: Type: message", on one line."""
    return masked(client, f"internal error: {describe(error)}")


def masked(client: object, text: str) -> str:
    """``text`` with the job's secrets masked, for the database or the terminal, which
    the log's masking does not reach (an unforeseen error may quote a URL)."""
    redactor = getattr(client, "redactor", None)  # a fake client may have none
    return redactor.redact(text) if isinstance(redactor, Redactor) else text


def _checked(items: object) -> list[Item] | Streamed:
    """``items`` if it is a list of Items of strings, else ``TypeError``: what a client
    that does not vouch for it returns is stored on the coordinator's side, where garbage
    would end the whole run, so it is checked here, where it fails one node. A page left
    in its bytes (``Streamed``) was checked item by item as it was mapped."""
    if isinstance(items, Streamed):
        return items
    if not isinstance(items, list):
        raise TypeError(f"the client returned {type(items).__name__}, expected a list of Items")
    for index, item in enumerate(items):
        if not is_item(item):
            raise TypeError(f"the client's item {index} is not an Item of strings: {item!r:.100}")
    return items


def is_item(item: object) -> TypeGuard[Item]:
    return type(item) is Item and (
        type(item[0]) is type(item[1]) is type(item[2]) is type(item[3]) is str
    )
