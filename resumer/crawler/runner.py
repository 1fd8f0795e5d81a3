"""The crawl's coordinator: claiming work, writing results, stopping.

One direction of data flow::

    store ──claim──► level queues ──► workers ──client──► HTTP
      ▲                                  │
      └──────── save (group commit) ◄── results

The coordinator (``Runner.step``, on the caller's thread) is the only one that
talks to the store: it keeps each level's queue topped up with a bounded batch
of claimed nodes and commits every result that has arrived in one transaction.
Workers (``workers.py``) only call the client. So memory is bounded by the batch
sizes, no transaction is ever open during an HTTP call, and the run ends exactly
when no node is pending and nothing is outstanding.

Owns: one run's life (``begin``, the ``step`` loop, the shutdown), the level-1
load, what has been claimed and not stored, the health and alert records, and how
a run ends (``Outcome``); the live counts are the store's (``Store.live_counts``).
Must not: query (the workers do, with the policies of ``policyset.py``), hold a
transaction while waiting for results, or install signal handlers (``signals.py``,
for the CLI).

Nothing hangs: any exception a query meets in a worker (the client's, a
policy's, a ``KeyboardInterrupt`` raised by code) fails that node as an
"internal error" and the run goes on, except refused credentials (``AuthError``,
a 401): they fail nothing, the node goes back to pending and the run stops as a
Ctrl-C would, then raises that error (``_halt``); any exception on the coordinator's side
(``step``, the store, the alerts, the health record, a worker thread that
died) ends the run: the workers are shut down, the nodes claimed but not
stored go back to pending, and ``RunError`` (or the ``ResumerError`` met, as it
is) says how to resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from resumer import _crashpoints
from resumer.checkpoint.store import Store
from resumer.checkpoint.tally import Counts
from resumer.checkpoint.transaction import Health, PriorityOf, Transaction, inherit
from resumer.crawler.estimate import Window, eta_seconds, queries_done, remaining_queries
from resumer.crawler.policyset import Policies
from resumer.crawler.workers import QueryClient, Workers, internal_error, is_item, masked
from resumer.errors import (
    AuthError,
    QueryError,
    ResumerError,
    RunError,
    UnstorablePage,
    describe,
)
from resumer.job.settings import Job
from resumer.model import Failure, Item, LiveFigures, Release, Result, Task
from resumer.ops.alerts import Alerts, Figures
from resumer.ops.logs import node_context
from resumer.policies.retry import NodeLabel, Stopped
from resumer.results import Outcome, iso_utc

log = logging.getLogger(__name__)

QUEUE_DEPTH = 2  # claimed-but-unstarted tasks kept per worker (bounds repeats after a crash)
SAVE_BATCH = 1024  # results committed per transaction at most
RATE_WINDOW = 60.0  # seconds behind the queries-a-second figure that `status` shows
ALERT_EVERY = 0.05  # seconds between two evaluations of the alert rules
HEALTH_EVERY = 0.5  # seconds between two checks of the health recorded for `status`


class Runner:
    """Runs one job on its checkpoint until no work is left or a stop is requested.

    The caller holds the job's lock (``checkpoint.lock.JobLock``).

    >>> runner = Runner(job, store, client, Policies(job))   # doctest: +SKIP
    >>> runner.run().exit_status                             # doctest: +SKIP
    0
    """

    def __init__(
        self,
        job: Job,
        store: Store,
        client: QueryClient,
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
        self.workers = Workers(job, client, policies, on_refused=self._halt, clock=clock)
        self._levels = tuple(job.queried_levels)
        self._outstanding = dict.fromkeys(self._levels, 0)  # claimed, result not saved
        self._maybe_pending: set[int] = set()
        self._levels_done: set[int] = set()
        self._save_error: Exception | None = None  # the first save that failed while shutting down
        self._refusals: list[AuthError] = []  # credentials refused: the run stops (``_halt``)
        self._saved = 0
        self._queried = 0  # queries answered for good (children or a failure) in this run
        self._retries = 0  # calls beyond the first, in this run
        self._retries_recorded = 0
        self._resume_after: float | None = None  # Unix time: a wait past max_pause stopped us
        self._paces = Window(RATE_WINDOW)
        self._rate: float | None = None  # queries a second over RATE_WINDOW, as last measured

    def counts(self) -> Counts:
        """Nodes per level and status, as ``Store.counts`` would say (without its scan):
        for the live display and the metrics, from any thread."""
        return self.store.live_counts()

    def live_figures(self) -> LiveFigures:
        """How the run fares now, with the overall progress and the ETA that ``status``
        would give (the same estimate and pace): for the live view and the metrics."""
        counts = self.store.live_counts()
        breaker, limit, send_rate = self.policies.health()
        depth = self.leaf_level
        remaining = remaining_queries(counts, depth)
        rate = self._rate
        return LiveFigures(
            breaker,
            limit,
            self.policies.limiter.in_flight,
            send_rate,
            queries_done(counts, depth),
            remaining,
            rate,
            eta_seconds(remaining, rate),
            self._wall(self.policies.pacer.paused_until),
        )

    def _wall(self, at: float | None) -> float | None:
        """A time on the pacer's clock as Unix time."""
        if at is None:
            return None
        return time.time() + (at - self.policies.pacer.clock())

    # -- control ---------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming and starting queries; those in flight finish (safe in a signal handler)."""
        self.stop_event.set()
        self.workers.wake()

    # -- the run ---------------------------------------------------------------

    def run(self) -> Outcome:
        """Run until the work runs out or a stop is requested.

        An error on the coordinator's side ends the run, after the workers are
        shut down and the claimed nodes reset: a ``ResumerError`` as it is
        (the store's ``CheckpointError``, say), any other as ``RunError``.
        """
        try:
            return self._unless_refused(self._run())
        except ResumerError:
            raise
        except Exception as error:
            log.debug("the run stopped on an internal error", exc_info=error)
            raise RunError(
                self._masked(
                    f"the run stopped on an internal error ({describe(error)}); nothing stored"
                    " is lost and the nodes not stored are queried again:"
                    f" resume with: resumer resume --db {self.store.path}"
                )
            ) from error

    def _run(self) -> Outcome:
        self.begin()
        try:
            self.workers.start()
            while not self.stop_event.is_set() and self.step():
                pass
        except BaseException:
            self._abort()
            raise
        self._shut_down()
        stopped = self.stop_event.is_set() and self.store.has_work()
        self.store.mark_stopped(time.time(), finished=not stopped)
        return self._outcome(stopped)

    def begin(self) -> None:
        """What a run does before its first ``step``: the nodes an earlier run left running
        go back to pending, the run is marked started, the level-1 nodes are loaded if
        they are not yet. ``run`` calls it; a test may call it, then drive ``step`` itself
        (and the workers, ``Workers.work_one``, without starting their threads)."""
        started = time.time()
        with self.store.transaction() as tx:
            reset = tx.reset_running()
        if reset:
            log.info("resume: %d node(s) left running by an earlier run are pending again", reset)
        self.store.mark_started(started)
        try:
            if self.store.source_status() == "pending":
                self._load_roots()
            self._maybe_pending = self.store.pending_levels() & set(self._levels)
            self._failed = sum(c["failed"] for c in self.store.live_counts().values())
            self._last_progress = self.clock()
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """After an error on the coordinator's side: stop the workers (queries in flight get
        ``grace``), store what can be stored, reset the claimed nodes. Never raises over
        that error: if this fails too, resume resets them."""
        self.stop_event.set()
        try:
            self._shut_down(fault=True)
            self.store.mark_stopped(time.time(), finished=False)
        except Exception as error:
            log.debug("the shutdown after an error failed too: %s", describe(error), exc_info=error)

    def step(self) -> bool:
        """One coordinator iteration: store what arrived and top up the queues, in one
        transaction. False when the work has run out."""
        if not self._maybe_pending and not any(self._outstanding.values()):
            return False
        results = self.workers.collect(SAVE_BATCH, wait=not self._hungry_levels())
        self._check_closed()
        fed: set[int] = set()
        claimed: dict[int, list[Task]] = {}
        with self.store.transaction() as tx:
            if results:
                fed, results = self._stored(tx, results)
            self._account(results, fed)
            for level, want in self._wants().items():
                claimed[level] = tx.claim(level, want)
            self._record_health(tx)
            self._evaluate_alerts(tx)
        if results:
            _crashpoints.hit("after_save")
        self.workers.unpark()
        for level, tasks in claimed.items():
            _crashpoints.hit("after_claim")
            if len(tasks) < self._claim_size(level):
                self._maybe_pending.discard(level)
            self._outstanding[level] += len(tasks)
            for task in tasks:
                self.workers.give(task)
        self._note_levels_done()
        self.workers.check()  # before shutdown, a worker ends only if it died: its node is lost
        return True

    def _check_closed(self) -> None:
        """The API asked for a wait past ``[rate] max_pause``: stop the run as a Ctrl-C would,
        keeping the time to resume after."""
        closed = self.policies.pacer.closed_until
        if closed is None or self._resume_after is not None:
            return
        self._resume_after = self._wall(closed)
        assert self._resume_after is not None
        self.store.mark_resume_after(self._resume_after)
        log.warning(
            "stopping: the API asked to wait until %s, longer than [rate] max_pause",
            iso_utc(self._resume_after),
        )
        self.request_stop()

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
        """Keep the pace and the policies' state in the checkpoint, for ``status``; tell the
        pacer how much work is left (it stops probing near the end)."""
        now = self.clock()
        if now - self._health_at < HEALTH_EVERY:
            return
        self._health_at = now
        self.policies.pacer.expect(remaining_queries(self.store.live_counts(), self.leaf_level))
        rates = self._paces.rates(now, {0: self._queried})
        rate = self._rate = rates[0] if rates is not None else None
        breaker, limit, send_rate = self.policies.health()
        why = self.pacer_reason()
        retries = self._retries - self._retries_recorded
        paused = self._wall(self.policies.pacer.paused_until)
        tx.set_health(Health(breaker, limit, rate, retries, send_rate, why, paused))
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
            if self.workers.queued(level) < self.job.level(level).workers
        ]

    def _wants(self) -> dict[int, int]:
        # Depth-first (the default): deeper levels first, so subtrees finish early and the
        # frontier stays small. Breadth-first: upper levels first.
        deeper_first = self.job.priority.order == "depth-first"
        levels = sorted(self._hungry_levels(), reverse=deeper_first)
        return {level: self._claim_size(level) for level in levels}

    def _load_roots(self) -> None:
        (task,) = self.store.claim(0, 1)
        label = NodeLabel(0, "source")
        try:
            items = _iterable(self.policies.retrier(0).call(self.client.load_roots, label))
        except Stopped:
            self._store_source(Release(task.node, 0, 1))
            return
        except AuthError as exc:
            self._halt(exc)
            self._store_source(Release(task.node, 0, 1))
            return
        except QueryError as exc:
            log.error("the source failed: %s", exc)
            self._store_source(Failure(task.node, 0, str(exc), 1, "source"))
            return
        except ResumerError:
            raise  # a source file that cannot be read (ConfigError): the user's to fix
        except Exception as exc:  # a bug in the client or a policy fails the node, as in a worker
            error = internal_error(self.client, exc)
            log.debug("internal error loading the source", exc_info=exc)
            log.error("the source failed: %s", error)
            self._store_source(Failure(task.node, 0, error, 1, "source"))
            return
        with self.store.transaction() as tx:
            count = tx.save_source(
                task.node, _checked_roots(items), 1, self.leaf_level, self._priority_of
            )
        log.info("loaded %d level-1 node(s) from the source", count)

    def _store_source(self, result: Failure | Release) -> None:
        with self.store.transaction() as tx:
            tx.save([result], self.leaf_level, self._priority_of)

    def _save(self, results: list[Result]) -> None:
        """Store results in a transaction of their own (used while shutting down)."""
        if not results:
            return
        with self.store.transaction() as tx:
            fed, results = self._stored(tx, results)
            self._account(results, fed)

    def _stored(self, tx: Transaction, results: list[Result]) -> tuple[set[int], list[Result]]:
        """``tx.save(results)``; a page that cannot be read again to be stored fails its
        node instead, and the batch is saved again (within a savepoint: what the failed
        attempt wrote is undone, the rest of the transaction stays). The levels that
        gained pending nodes, and the results as saved."""
        while True:
            try:
                with tx.savepoint():
                    return tx.save(results, self.leaf_level, self._priority_of), results
            except UnstorablePage as page:
                if not any(r.node == page.node for r in results):
                    raise  # not one of these: no saving again would mend it
                results = [_failed(r, page) if r.node == page.node else r for r in results]

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
        self._maybe_pending |= fed & set(self._levels)

    def _note_levels_done(self) -> None:
        for level in self._levels:
            if level in self._levels_done:
                continue
            above_done = level == 1 or level - 1 in self._levels_done
            if above_done and level not in self._maybe_pending and not self._outstanding[level]:
                self._levels_done.add(level)
                log.info("level %d: every query done", level)

    def _halt(self, error: AuthError) -> None:
        """Stop the run as a Ctrl-C would, for credentials refused (or no token): no new
        query starts, those in flight finish, nothing is failed for it; ``run`` raises
        the first such error once everything is checkpointed (any thread)."""
        if not self._refusals:
            log.error("%s; stopping the run (no node is failed for it)", error)
        self._refusals.append(error)
        self.request_stop()

    def _unless_refused(self, outcome: Outcome) -> Outcome:
        """``outcome``, unless the run stopped on refused credentials: then that error,
        saying how to resume once they are fixed."""
        if not self._refusals:
            return outcome
        first = self._refusals[0]
        raise type(first)(  # AuthError, or its kind (TlsError, StopError)
            self._masked(
                f"{first}. The run stopped: everything is checkpointed and no node"
                " failed; once that is fixed, resume with:"
                f" resumer resume --db {self.store.path}"
            )
        ) from first

    def _masked(self, text: str) -> str:
        return masked(self.client, text)

    # -- stopping --------------------------------------------------------------

    def _shut_down(self, *, fault: bool = False) -> None:
        """Let in-flight queries finish (within ``grace`` when stopping), store their results,
        put the nodes claimed but not finished back to pending.

        ``fault``: the run ends on an error (its message says so, not a "stop requested"
        line). A save that fails here stops the saving, not the shutdown: the workers are
        still waited for and the claimed nodes reset, then the error is raised.
        """
        self.workers.finish()
        stopping = self.stop_event.is_set()
        if stopping and not fault:
            log.warning(
                "stop requested: no new query starts; those in flight may finish within %.0fs",
                self.job.crawl.grace,
            )
        deadline = self.clock() + (self.job.crawl.grace if stopping else 3600)
        while self.workers.running and self.clock() < deadline:
            self._save_unless_failed(self.workers.collect(SAVE_BATCH, wait=True))
        while batch := self.workers.collect(SAVE_BATCH, wait=False):
            self._save_unless_failed(batch)
        with self.store.transaction() as tx:
            unfinished = tx.reset_running()
        if unfinished:
            log.info("%d claimed node(s) not finished go back to pending", unfinished)
        if self._save_error is not None:
            raise self._save_error

    def _save_unless_failed(self, results: list[Result]) -> None:
        """``_save``, until a save fails: later results are dropped (their nodes are reset
        to pending) and the first error is kept for the end of the shutdown."""
        if self._save_error is not None:
            return
        try:
            self._save(results)
        except Exception as error:
            self._save_error = error

    def _outcome(self, stopped: bool) -> Outcome:
        failed = sum(c["failed"] for c in self.store.live_counts().values())
        source_error = self.store.source_error() if self.store.source_status() == "failed" else None
        return Outcome(
            source_error=source_error,
            stopped=stopped,
            complete=self.store.source_status() == "complete",
            failed=failed,
            queries=self._saved,
            resume_after=self._resume_after if stopped else None,
        )


def _failed(result: Result, page: UnstorablePage) -> Failure:
    """``result`` (one that brought children) as a failure of its node."""
    return Failure(result.node, result.level, str(page), result.attempts, page.item_id)


def _iterable(items: object) -> Iterable[object]:
    if not isinstance(items, Iterable) or isinstance(items, str | bytes | dict):
        raise TypeError(f"the client returned {type(items).__name__}, expected Items")
    return items


def _checked_roots(items: Iterable[object]) -> Iterator[Item]:
    """The source's items, each checked as it is read (a long source never sits in memory)."""
    for index, item in enumerate(items):
        if not is_item(item):
            raise TypeError(f"the client's source item {index} is not an Item of strings")
        yield item
