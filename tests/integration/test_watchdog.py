"""Nothing hangs, nothing dies with a traceback.

The runner is driven in-process through its seam, ``Runner(job, store, client,
policies)``, with a fake client answering from a ``FakeTree`` (or failing on
purpose) and a real checkpoint in ``tmp_path``. A bug in the client or a policy
fails its node and the run goes on; a fault on the coordinator's side ends the
run with one clear error, the workers shut down and the claimed nodes pending
again. The alert sender and the metrics server outlive any exception too.

Every run is bounded: it runs on a thread joined with a timeout, so a hang fails
the test in seconds instead of stalling the suite.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from resumer import api
from resumer.checkpoint.store import Store
from resumer.checkpoint.transaction import Transaction
from resumer.crawler.policyset import Policies
from resumer.crawler.runner import Runner
from resumer.crawler.workers import Workers
from resumer.errors import CheckpointError, RunError
from resumer.fake.tree import FakeTree
from resumer.job.loader import job_from_dict
from resumer.job.settings import Job
from resumer.job.template import Redactor
from resumer.model import Item, Parked, Result, Task
from resumer.ops.alerts import Alerts, Figures, Rules
from resumer.ops.metrics import Metrics
from tests.seam import RUN_LIMIT, TreeClient, run_bounded

TREE = FakeTree(seed=21, roots=5, fanout=(3, 3), even=True)  # levels 1 and 2 are queried
SETTINGS = {
    "source": {"url": "http://127.0.0.1:9/features"},  # never fetched: the fake client answers
    "request": {"url": "http://127.0.0.1:9/children"},
    "crawl": {"max_depth": 3, "grace": 2.0},
    "retry": {"attempts": 1},
    "levels": {"1": {"workers": 2}, "2": {"workers": 3}},
}


class FailingClient(TreeClient):
    """Answers like TreeClient, except for the nodes in ``answers``: it raises the
    exception given for one, or returns the object given (garbage)."""

    def __init__(self, answers: dict[str, object]) -> None:
        super().__init__(TREE)
        self.answers = answers
        self.redactor: Redactor | None = None

    def query(self, task: Task, timeout: float) -> Any:
        answer = self.answers.get(task.id, None)
        if task.id not in self.answers:
            return super().query(task, timeout)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class FaultyTransaction:
    """A real transaction whose ``save`` raises its store's fault, once."""

    def __init__(self, tx: Transaction, store: FaultyStore) -> None:
        self._tx = tx
        self._store = store

    def save(self, results: list[Result], *args: Any) -> set[int]:
        if self._store.fault is not None:
            fault, self._store.fault = self._store.fault, None
            raise fault
        return self._tx.save(results, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class FaultyStore:
    """A real Store with a fault injected at its boundary: the first ``save`` of
    results in a transaction raises ``fault``; everything else is the real store."""

    def __init__(self, store: Store, fault: BaseException) -> None:
        self._store = store
        self.fault: BaseException | None = fault

    @contextmanager
    def transaction(self) -> Iterator[FaultyTransaction]:
        with self._store.transaction() as tx:
            yield FaultyTransaction(tx, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class BrokenAlerts:
    """Alerts whose rules raise: a bug on the coordinator's side."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def evaluate(self, figures: Figures) -> bool:
        raise ZeroDivisionError("an alert rule divided by zero")


class BrokenHealth(Policies):
    """Policies whose health report (recorded for ``status``) raises."""

    def health(self) -> tuple[str, int, float | None]:
        raise RuntimeError("the health record broke")


@pytest.fixture
def job() -> Job:
    return job_from_dict(SETTINGS)


@pytest.fixture
def store(tmp_path: Path, job: Job) -> Iterator[Store]:
    store = Store.create(tmp_path / "w.db", job.text, job.origin, str(job.base_dir))
    try:
        yield store
    finally:
        store.close()


def queried_nodes(skip: frozenset[str] = frozenset()) -> set[str]:
    """The nodes a crawl queries (levels 1 and 2), without those under a node in ``skip``."""
    queried = set()
    for level, record in TREE.walk(2):
        node_id = record["id"]
        ancestors = {node_id.rsplit(".", depth)[0] for depth in range(level)}
        if not ancestors & (skip - {node_id}):
            queried.add(node_id)
    return queried


@contextmanager
def threads_all_end() -> Iterator[None]:
    """Every thread started inside the block has ended by its end (joined, bounded)."""
    before = set(threading.enumerate())
    yield
    started = [thread for thread in threading.enumerate() if thread not in before]
    for thread in started:
        thread.join(RUN_LIMIT)
    assert [thread.name for thread in started if thread.is_alive()] == []


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM nodes GROUP BY status").fetchall())


def exported(db: Path) -> Any:
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


def no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def tracebacks_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]
    assert loud == [], [r.getMessage() for r in loud]


# -- a bug in the client or a policy fails its node; the run goes on ------------------


@pytest.mark.parametrize(
    "error",
    [
        ZeroDivisionError("division by zero"),
        RuntimeError("the client\nbroke"),
        KeyboardInterrupt(),  # raised by code in a worker: no signal lands there
        SystemExit(3),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unexpected_exception_fails_its_node_and_the_rest_completes(
    job: Job,
    store: Store,
    error: BaseException,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumer")
    bad = {"F2": error, "F4.3": error}  # a level-1 node and a level-2 node
    client = FailingClient(dict(bad))
    with threads_all_end():
        outcome = run_bounded(Runner(job, store, client, Policies(job)))
    assert (outcome.exit_status, outcome.failed, outcome.stopped) == (1, 2, False)
    failed = {node.id: node.error for node in store.failed_nodes()}
    assert set(failed) == set(bad)
    assert all(
        text.startswith(f"internal error: {type(error).__name__}") for text in failed.values()
    )
    assert all("\n" not in text for text in failed.values())
    assert set(client.queried) == queried_nodes(skip=frozenset(bad)) - set(bad)
    assert statuses(store.path).get("running", 0) == statuses(store.path).get("pending", 0) == 0
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "F4.3" in r.getMessage()
    ]
    assert len(warnings) == 1 and "internal error" in warnings[0].getMessage()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert {r.exc_info[1] for r in debug if r.exc_info} == {error}
    tracebacks_only_at_debug(caplog)
    no_traceback(capfd)


def test_an_internal_error_stored_for_a_node_has_the_jobs_secrets_masked(
    job: Job, store: Store
) -> None:
    client = FailingClient({"F1": RuntimeError("GET http://h/children?token=s3cret! failed")})
    client.redactor = Redactor(["s3cret!"])  # as the real client's: the job's ${VAR} values
    run_bounded(Runner(job, store, client, Policies(job)))
    ((error,),) = [(node.error,) for node in store.failed_nodes()]
    assert error == "internal error: RuntimeError: GET http://h/children?token=*** failed"


@pytest.mark.parametrize(
    "garbage",
    [None, {"items": []}, "F1.1", [{"id": "F1.1"}], [Item("F1.1", "n", "t", None)]],  # type: ignore[arg-type]
    ids=["None", "a dict", "a string", "a list of dicts", "an Item of non-strings"],
)
def test_a_client_returning_garbage_fails_the_node_and_the_run_ends(
    job: Job, store: Store, garbage: object, capfd: pytest.CaptureFixture[str]
) -> None:
    client = FailingClient({"F1": garbage})
    with threads_all_end():
        outcome = run_bounded(Runner(job, store, client, Policies(job)))
    assert (outcome.exit_status, outcome.failed) == (1, 1)
    ((node_id, error),) = [(node.id, node.error) for node in store.failed_nodes()]
    assert node_id == "F1"
    assert error.startswith("internal error: TypeError: the client")
    assert set(client.queried) == queried_nodes(skip=frozenset({"F1"})) - {"F1"}
    no_traceback(capfd)


@pytest.mark.parametrize(
    "roots",
    [RuntimeError("no roots today"), None, 42],
    ids=["raises", "returns None", "returns a number"],
)
def test_a_source_that_breaks_the_client_fails_the_source_and_the_run_ends(
    job: Job, store: Store, roots: object, capfd: pytest.CaptureFixture[str]
) -> None:
    class BrokenRoots(TreeClient):
        def load_roots(self) -> Any:
            if isinstance(roots, BaseException):
                raise roots
            return roots

    outcome = run_bounded(Runner(job, store, BrokenRoots(TREE), Policies(job)))
    assert outcome.exit_status == 1 and not outcome.complete
    assert outcome.source_error is not None
    assert outcome.source_error.startswith("internal error: ")
    no_traceback(capfd)


# -- a fault on the coordinator's side ends the run, cleanly --------------------------


def test_a_store_whose_save_fails_once_ends_the_run_and_a_resume_finishes_it(
    tmp_path: Path,
    job: Job,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumer")
    faulty = FaultyStore(store, RuntimeError("the disk is on fire"))
    with threads_all_end(), pytest.raises(RunError) as raised:
        run_bounded(Runner(job, cast(Store, faulty), TreeClient(TREE), Policies(job)))
    message = str(raised.value)
    assert "internal error (RuntimeError: the disk is on fire)" in message
    assert f"resume with: resumer resume --db {store.path}" in message
    assert isinstance(raised.value.__cause__, RuntimeError)
    after = statuses(store.path)
    assert after.get("running", 0) == 0  # the claimed nodes are pending again
    assert after.get("pending", 0) > 0  # the results lost in the failed save among them
    tracebacks_only_at_debug(caplog)
    no_traceback(capfd)

    outcome = run_bounded(Runner(job, store, TreeClient(TREE), Policies(job)))
    assert (outcome.exit_status, outcome.complete, outcome.failed) == (0, True, 0)
    assert exported(store.path) == TREE.expected_export(3)


def test_a_database_error_in_a_save_ends_the_run_as_a_checkpoint_error(
    job: Job, store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    faulty = FaultyStore(store, sqlite3.OperationalError("disk I/O error"))
    with threads_all_end(), pytest.raises(CheckpointError, match="disk I/O error"):
        run_bounded(Runner(job, cast(Store, faulty), TreeClient(TREE), Policies(job)))
    assert statuses(store.path).get("running", 0) == 0
    no_traceback(capfd)


@pytest.mark.parametrize("where", ["alerts", "health", "on_results"])
def test_a_bug_in_the_coordinator_ends_the_run_with_a_run_error(
    job: Job, store: Store, where: str, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken_on_results(results: list[Result]) -> None:
        raise KeyError("metrics")

    policies = BrokenHealth(job) if where == "health" else Policies(job)
    runner = Runner(
        job,
        store,
        TreeClient(TREE),
        policies,
        alerts=cast(Alerts, BrokenAlerts()) if where == "alerts" else None,
        on_results=broken_on_results if where == "on_results" else None,
    )
    with threads_all_end(), pytest.raises(RunError, match="internal error") as raised:
        run_bounded(runner)
    assert "resumer resume --db" in str(raised.value)
    assert statuses(store.path).get("running", 0) == 0
    no_traceback(capfd)


def test_a_worker_thread_that_dies_ends_the_run_instead_of_leaving_it_waiting(
    job: Job, store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    class DyingWorkers(Workers):
        """A bug in the worker's own loop, around the query (where nothing is caught)."""

        def _query(self, task: Task, timeout: float) -> Result | Parked:
            if task.id == "F3":
                raise SystemExit("the worker loop broke")
            return super()._query(task, timeout)

    runner = Runner(job, store, TreeClient(TREE), Policies(job))
    runner.workers = DyingWorkers(
        job, runner.client, runner.policies, on_refused=lambda error: runner.request_stop()
    )
    with threads_all_end(), pytest.raises(RunError, match=r"worker thread level1-\d ended"):
        run_bounded(runner)
    assert statuses(store.path).get("running", 0) == 0  # F3 among them: pending again
    no_traceback(capfd)


# -- the alert sender and the metrics server outlive any exception --------------------


@pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug\nin the post"), TypeError("bad document"), KeyboardInterrupt()],
    ids=lambda error: type(error).__name__,
)
def test_the_webhook_sender_survives_any_exception_and_sends_the_next_alerts(
    error: BaseException, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumer")
    sent: list[dict[str, Any]] = []

    def post(url: str, document: dict[str, Any]) -> None:
        if document["state"] == "firing":
            raise error
        sent.append(document)

    rules = Rules(error_rate=0, window=60, breaker_open=0, stall=0, failed_nodes=1)
    alerts = Alerts(rules, job="job.toml", states={}, webhook="http://hook.invalid/", post=post)
    with threads_all_end():
        alerts.evaluate(Figures(now=0.0, breaker="closed", failed_nodes=5, last_progress=0.0))
        alerts.evaluate(Figures(now=1.0, breaker="closed", failed_nodes=0, last_progress=1.0))
        alerts.close()  # delivers what is queued, then joins the sender (bounded)
    assert [document["state"] for document in sent] == ["resolved"]
    (warning,) = [
        r for r in caplog.records if r.levelno == logging.WARNING and "webhook" in r.getMessage()
    ]
    assert type(error).__name__ in warning.getMessage() and "\n" not in warning.getMessage()
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [error]
    tracebacks_only_at_debug(caplog)
    no_traceback(capfd)


@contextmanager
def served(counts: Any) -> Iterator[Metrics]:
    metrics = Metrics(counts=counts, in_flight=lambda: 0, limit=lambda: 4, breaker=lambda: "closed")
    metrics.serve(0)
    try:
        yield metrics
    finally:
        metrics.close()


def scrape(metrics: Metrics) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5) as client:
        return client.get(f"http://127.0.0.1:{metrics.port}/metrics")


def test_a_collector_that_raises_answers_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumer")
    calls: list[int] = []

    def counts() -> dict[int, dict[str, int]]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the tally\nbroke")
        return {1: {"pending": 3}}

    with threads_all_end(), served(counts) as metrics:
        failed, answered = scrape(metrics), scrape(metrics)
    assert failed.status_code == 500 and "RuntimeError: the tally broke" in failed.text
    assert answered.status_code == 200 and 'resumer_nodes{level="1",status="pending"} 3' in (
        answered.text
    )
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "metrics: a scrape failed: RuntimeError: the tally broke"
    tracebacks_only_at_debug(caplog)
    no_traceback(capfd)


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a scraper that is killed does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_scraper_that_disconnects_neither_kills_the_server_nor_prints(
    capfd: pytest.CaptureFixture[str],
) -> None:
    entered, release = threading.Event(), threading.Event()

    def counts() -> dict[int, dict[str, int]]:
        if not release.is_set():  # the scrape that is cut: answer once its scraper is gone
            entered.set()
            release.wait(RUN_LIMIT)
        return {1: {"complete": 2}}

    with threads_all_end(), served(counts) as metrics:
        address = ("127.0.0.1", metrics.port or 0)
        reset(socket.create_connection(address, timeout=5))  # gone before it asks
        cut = socket.create_connection(address, timeout=5)
        cut.sendall(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\n\r\n")
        assert entered.wait(RUN_LIMIT)
        reset(cut)  # gone while the answer is being made
        release.set()
        answered = scrape(metrics)
    assert answered.status_code == 200 and "resumer_nodes" in answered.text
    no_traceback(capfd)
