"""The crawl: worker pools per level, claiming work, writing results, stopping.

One direction of data flow::

    store ──claim──► level queues ──► workers ──client──► HTTP
      ▲                                  │
      └──────── save (group commit) ◄── results

The coordinator (``Runner.step``, on the caller's thread) is the only one that
talks to the store: it keeps each level's queue topped up with a bounded batch
of claimed nodes and commits every result that has arrived in one transaction.
Workers only call the client. So memory is bounded by the batch sizes, no
transaction is ever open during an HTTP call, and the run ends exactly when no
node is pending and nothing is outstanding.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from resumer import crashpoints
from resumer.alerts import Alerts, Figures
from resumer.client import Client
from resumer.config import Job
from resumer.errors import QueryError
from resumer.logs import node_context
from resumer.model import Children, Failure, Item, Release, Result, Task
from resumer.policies import (
    AdaptiveLimit,
    CircuitBreaker,
    ConcurrencyLimiter,
    Gate,
    NodeLabel,
    Pacer,
    Retrier,
    RetryPolicy,
    Stopped,
)
from resumer.policies.breaker import CLOSED
from resumer.store import Counts, Health, PriorityOf, Store, Tally, Transaction, inherit

log = logging.getLogger(__name__)

QUEUE_DEPTH = 2  # claimed-but-unstarted tasks kept per worker (bounds repeats after a crash)
SAVE_BATCH = 1024  # results committed per transaction at most
POLL = 0.25  # seconds the coordinator waits for a result before re-checking the stop flag
RELEASES = 10  # a node the server keeps throttling fails after this many rounds of attempts
RATE_WINDOW = 60.0  # seconds behind the queries-a-second figure that `status` shows
ALERT_EVERY = 0.05  # seconds between two evaluations of the alert rules
HEALTH_EVERY = 0.5  # seconds between two checks of the health recorded for `status`
GATHER = 0.002  # seconds spent gathering more results into one commit once one has arrived

_WAKE = object()  # put on the results queue to wake the coordinator
_EXITED = object()  # put on the results queue by a worker as its last act


class Policies:
    """The job's policies, built once per run and shared by every thread."""

    def __init__(self, job: Job, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stop = threading.Event()
        crawl = job.crawl
        self.limiter = ConcurrencyLimiter(crawl.http_concurrency)
        adaptive = (
            AdaptiveLimit(self.limiter, crawl.min_concurrency, crawl.http_concurrency, clock)
            if crawl.adaptive
            else None
        )
        self.breaker = CircuitBreaker(
            job.breaker.failure_threshold, job.breaker.reset_timeout, clock
        )
        self.pacer = Pacer(
            ceiling=job.rate.per_second,
            burst=job.rate.burst,
            adaptive=job.rate.adaptive,
            max_pause=job.retry.max,
            clock=clock,
        )
        self.gate = Gate(
            stop=self.stop,
            limiter=self.limiter,
            breaker=self.breaker,
            pacer=self.pacer,
            adaptive=adaptive,
            clock=clock,
        )
        retry = job.retry
        self._retriers = {
            level: RetryPolicy(attempts, retry.initial, retry.max, retry.multiplier).bind(self.stop)
            for level, attempts in [
                (0, retry.attempts),
                *((n, job.level(n).attempts) for n in job.queried_levels),
            ]
        }

    def retrier(self, level: int) -> Retrier:
        return self._retriers[level]

    def health(self) -> tuple[str, int, float | None]:
        """What the live view shows: the breaker's state, the in-flight limit, the send rate."""
        return self.breaker.state, self.limiter.limit, self.pacer.rate


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended."""

    stopped: bool  # a stop was requested before the work ran out
    complete: bool  # every node is complete
    failed: int  # nodes failed for good
    queries: int  # results stored by this run
    source_error: str | None = None  # why the level-1 list could not be loaded

    @property
    def exit_status(self) -> int:
        if self.stopped:
            return 130
        return 0 if self.complete else 1


class Runner:
    """Runs one job on its checkpoint until no work is left or a stop is requested.

    The caller holds the job's lock (``lock.JobLock``).

    >>> runner = Runner(job, store, client)   # doctest: +SKIP
    >>> runner.run().exit_status              # doctest: +SKIP
    0
    """

    def __init__(
        self,
        job: Job,
        store: Store,
        client: Client,
        policies: Policies,
        *,
        on_results: Callable[[list[Result]], None] | None = None,
        alerts: Alerts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.store = store
        self.client = client
        self.policies = policies
        self.on_results = on_results  # told of every batch stored (metrics)
        self.alerts = alerts
        self._failed = 0  # failed nodes in the checkpoint (counted at start, then kept)
        self._alerts_at = -1e9
        self._last_progress = clock()
        self.clock = clock
        self.stop_event = policies.stop
        self.leaf_level = job.crawl.max_depth
        weighted = job.priority.types or job.priority.roots
        self._priority_of: PriorityOf = job.priority.of if weighted else inherit
        self._health_at = -1e9
        self._results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queues: dict[int, queue.SimpleQueue[Task | None]] = {
            level: queue.SimpleQueue() for level in job.queried_levels
        }
        self._outstanding = dict.fromkeys(job.queried_levels, 0)  # claimed, result not saved
        self._maybe_pending: set[int] = set()
        self._levels_done: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._exited = 0  # workers that have said they are done
        self._saved = 0
        self._queried = 0  # queries answered for good (children or a failure) in this run
        self._retries = 0  # calls beyond the first, in this run
        self._retries_recorded = 0
        self._paces: deque[tuple[float, int]] = deque()
        self._tally = Tally(store.counts())  # the one scan of the table in a run

    def counts(self) -> Counts:
        """Nodes per level and status, as ``Store.counts`` would say (without its scan):
        for the live display and the metrics, from any thread."""
        return self._tally.counts()

    # -- control ---------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming and starting queries; those in flight finish (safe in a signal handler)."""
        self.stop_event.set()
        self._results.put(_WAKE)

    # -- the run ---------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        """A write transaction whose moves reach the tally once it has committed."""
        with self.store.transaction() as tx:
            yield tx
        self._tally.apply(tx.moves)

    def run(self) -> Outcome:
        started = time.time()
        with self._transaction() as tx:
            reset = tx.reset_running()
        if reset:
            log.info("resume: %d node(s) left running by an earlier run are pending again", reset)
        self.store.mark_started(started)
        if self.store.source_status() == "pending":
            self._load_roots()
        self._maybe_pending = self.store.pending_levels() & set(self._queues)
        self._failed = sum(c["failed"] for c in self._tally.counts().values())
        self._last_progress = self.clock()
        self._start_workers()
        try:
            while not self.stop_event.is_set() and self.step():
                pass
        finally:
            self._shut_down()
        stopped = self.stop_event.is_set() and self.store.has_work()
        self.store.mark_stopped(time.time(), finished=not stopped)
        return self._outcome(stopped)

    def step(self) -> bool:
        """One coordinator iteration: store what arrived and top up the queues, in one
        transaction. False when the work has run out."""
        if not self._maybe_pending and not any(self._outstanding.values()):
            return False
        results = self._collect(wait=not self._hungry_levels())
        fed: set[int] = set()
        claimed: dict[int, list[Task]] = {}
        with self._transaction() as tx:
            if results:
                fed = tx.save(results, self.leaf_level, self._priority_of)
            self._account(results, fed)
            for level, want in self._wants().items():
                claimed[level] = tx.claim(level, want)
            self._record_health(tx)
            self._evaluate_alerts(tx)
        if results:
            crashpoints.hit("after_save")
        for level, tasks in claimed.items():
            crashpoints.hit("after_claim")
            if len(tasks) < self._claim_size(level):
                self._maybe_pending.discard(level)
            self._outstanding[level] += len(tasks)
            for task in tasks:
                self._queues[level].put(task)
        self._note_levels_done()
        return True

    def _evaluate_alerts(self, tx: Transaction) -> None:
        """Check the alert rules (cheap: a few comparisons) and keep their states."""
        now = self.clock()
        if self.alerts is None or now - self._alerts_at < ALERT_EVERY:
            return
        self._alerts_at = now
        figures = Figures(now, self.policies.breaker.state, self._failed, self._last_progress)
        if self.alerts.evaluate(figures):
            tx.set_alert_states(self.alerts.states)

    def _record_health(self, tx: Transaction) -> None:
        """Keep the pace and the policies' state in the checkpoint, for ``status``."""
        now = self.clock()
        if now - self._health_at < HEALTH_EVERY:
            return
        self._health_at = now
        self._paces.append((now, self._queried))
        while len(self._paces) > 2 and now - self._paces[0][0] > RATE_WINDOW:
            self._paces.popleft()
        then, before = self._paces[0]
        rate = (self._queried - before) / (now - then) if now > then else None
        breaker, limit, send_rate = self.policies.health()
        why = self.pacer_reason()
        retries = self._retries - self._retries_recorded
        tx.set_health(Health(breaker, limit, rate, retries, send_rate, why))
        self._retries_recorded = self._retries

    def pacer_reason(self) -> str | None:
        pacer = self.policies.pacer
        return pacer.reason if pacer.rate is not None else None

    def _claim_size(self, level: int) -> int:
        return self.job.level(level).workers * QUEUE_DEPTH

    def _hungry_levels(self) -> list[int]:
        """Levels that may have pending nodes and fewer queued tasks than workers."""
        if self.stop_event.is_set():
            return []
        return [
            level
            for level in self._maybe_pending
            if self._queues[level].qsize() < self.job.level(level).workers
        ]

    def _wants(self) -> dict[int, int]:
        # Depth-first (the default): deeper levels first, so subtrees finish early and the
        # frontier stays small. Breadth-first: upper levels first.
        deeper_first = self.job.priority.order == "depth-first"
        levels = sorted(self._hungry_levels(), reverse=deeper_first)
        return {level: self._claim_size(level) for level in levels}

    def _load_roots(self) -> None:
        (task,) = self.store.claim(0, 1)
        try:
            items = self.policies.retrier(0).call(self.client.load_roots, NodeLabel(0, "source"))
        except Stopped:
            self._store_source(Release(task.node, 0, 1))
            return
        except QueryError as exc:
            log.error("the source failed: %s", exc)
            self._store_source(Failure(task.node, 0, str(exc), 1, "source"))
            return
        with self._transaction() as tx:
            count = tx.save_source(task.node, items, 1, self.leaf_level, self._priority_of)
        log.info("loaded %d level-1 node(s) from the source", count)

    def _store_source(self, result: Failure | Release) -> None:
        with self._transaction() as tx:
            tx.save([result], self.leaf_level, self._priority_of)

    def _collect(self, *, wait: bool) -> list[Result]:
        """Take the results that have arrived; if ``wait``, first wait up to POLL for one,
        then let GATHER pass so that one commit carries many results (and the
        coordinator is woken once per batch, not once per result)."""
        results: list[Result] = []
        try:
            item = self._results.get(timeout=POLL) if wait else self._results.get_nowait()
        except queue.Empty:
            return results
        if wait:
            self.stop_event.wait(GATHER)
        while True:
            if item is _EXITED:
                self._exited += 1
            elif item is not _WAKE:
                results.append(item)  # type: ignore[arg-type]
            if len(results) >= SAVE_BATCH:
                return results
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return results

    def _save(self, results: list[Result]) -> None:
        """Store results in a transaction of their own (used while shutting down)."""
        if not results:
            return
        with self._transaction() as tx:
            fed = tx.save(results, self.leaf_level, self._priority_of)
            self._account(results, fed)

    def _account(self, results: list[Result], fed: set[int]) -> None:
        if self.on_results is not None and results:
            self.on_results(results)
        self._saved += len(results)
        for result in results:
            self._retries += max(0, result.attempts - 1)
            if not isinstance(result, Release):
                self._queried += 1
                self._last_progress = self.clock()
            if isinstance(result, Failure):
                self._failed += 1
            self._outstanding[result.level] -= 1
            if isinstance(result, Failure):
                log.warning(
                    "failed: level %d id %r: %s",
                    result.level,
                    result.id,
                    result.error,
                    extra=node_context(result.level, result.id),
                )
            elif isinstance(result, Release):
                self._maybe_pending.add(result.level)
        self._maybe_pending |= fed & set(self._queues)

    def _note_levels_done(self) -> None:
        for level in self._queues:
            if level in self._levels_done:
                continue
            above_done = level == 1 or level - 1 in self._levels_done
            if above_done and level not in self._maybe_pending and not self._outstanding[level]:
                self._levels_done.add(level)
                log.info("level %d: every query done", level)

    # -- workers ---------------------------------------------------------------

    def _start_workers(self) -> None:
        for level, work in self._queues.items():
            for number in range(self.job.level(level).workers):
                thread = threading.Thread(
                    target=self._work,
                    args=(level, work),
                    name=f"level{level}-{number}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def _work(self, level: int, work: queue.SimpleQueue[Task | None]) -> None:
        timeout = self.job.level(level).timeout
        try:
            while True:
                task = work.get()
                if task is None:
                    return
                if self.stop_event.is_set():
                    continue  # claimed but unsent: reset to pending at shutdown
                self._results.put(self._query(task, timeout))
        finally:
            self._results.put(_EXITED)  # the coordinator counts these to end the run

    def _query(self, task: Task, timeout: float) -> Result:
        attempts = 0

        def attempt() -> list[Item]:
            nonlocal attempts
            attempts += 1
            items = self.client.query(task, timeout)
            crashpoints.hit("after_http")
            return items

        label = NodeLabel(task.level, task.id)
        try:
            items = self.policies.retrier(task.level).call(attempt, label)
        except Stopped:
            return Release(task.node, task.level, attempts)
        except QueryError as exc:
            if self._server_trouble(exc, task, attempts):
                log.info("%s back to pending: %s", label, exc, extra=label.context())
                return Release(task.node, task.level, attempts)
            return Failure(task.node, task.level, str(exc), attempts, task.id)
        except Exception as exc:  # a bug must not hang the run: fail the node, keep going
            log.exception("internal error querying %s", label, extra=label.context())
            return Failure(task.node, task.level, f"internal error: {exc!r}", attempts, task.id)
        return Children(task.node, task.level, items, attempts)

    def _server_trouble(self, error: QueryError, task: Task, attempts: int) -> bool:
        """True if a query that ran out of attempts should wait for later, not fail.

        The server was down (the breaker is not closed, or it said 503: an
        outage's first 503s look like load shed until errors are all there is)
        or kept saying "too many" (``QueryError.throttled``): not the node's
        fault, so it goes back to pending, up to RELEASES times its attempts in
        all, then fails.
        """
        if not error.transient:
            return False
        budget = RELEASES * self.policies.retrier(task.level).policy.attempts
        if task.attempts + attempts >= budget:
            return False
        unavailable = error.status == 503 or self.policies.breaker.state != CLOSED
        return error.throttled or unavailable

    # -- stopping --------------------------------------------------------------

    def _shut_down(self) -> None:
        """Let in-flight queries finish (within ``grace`` when stopping), store their results."""
        for level, work in self._queues.items():
            for _ in range(self.job.level(level).workers):
                work.put(None)
        if self.stop_event.is_set():
            log.warning(
                "stop requested: no new query starts; those in flight may finish within %.0fs",
                self.job.crawl.grace,
            )
        deadline = self.clock() + (self.job.crawl.grace if self.stop_event.is_set() else 3600)
        while self._exited < len(self._threads) and self.clock() < deadline:
            self._save(self._collect(wait=True))
        while batch := self._collect(wait=False):
            self._save(batch)
        with self._transaction() as tx:
            unfinished = tx.reset_running()
        if unfinished:
            log.info("%d claimed node(s) not finished go back to pending", unfinished)

    def _outcome(self, stopped: bool) -> Outcome:
        failed = sum(c["failed"] for c in self._tally.counts().values())
        source_error = self.store.source_error() if self.store.source_status() == "failed" else None
        return Outcome(
            source_error=source_error,
            stopped=stopped,
            complete=self.store.source_status() == "complete",
            failed=failed,
            queries=self._saved,
        )


def install_signal_handlers(runner: Runner) -> None:
    """First SIGINT/SIGTERM: drain and stop. Second: exit at once with 130."""
    count = 0

    def say(text: str) -> None:
        # os.write, not print: a signal may land while the main thread is printing.
        os.write(sys.stderr.fileno(), f"\n{text}\n".encode())

    def handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        if count == 1:
            say("stopping: letting queries in flight finish (Ctrl-C again to quit at once)")
            runner.request_stop()
        else:
            say("quitting at once; queries in flight will be made again on resume")
            os._exit(130)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
