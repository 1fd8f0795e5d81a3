"""A throttled query is parked for its Retry-After while its worker goes on: the wait is
the node's, never the crawl's. Driven through the runner's seam with a fake client and
a clock that moves only when a query is made, so nothing waits for real."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resumer.checkpoint.store import Store
from resumer.crawler.policyset import Policies
from resumer.crawler.runner import Runner
from resumer.errors import QueryError
from resumer.fake.tree import FakeTree
from resumer.job.loader import job_from_dict
from resumer.job.settings import Job
from resumer.model import Task
from resumer.results import Outcome
from tests.seam import TreeClient, run_bounded

TREE = FakeTree(seed=5, roots=3, fanout=(2,), even=True)  # three level-1 queries: F1 F2 F3


class Clock:
    """Seconds that pass only as the client says (a query takes one)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class ThrottlingClient(TreeClient):
    """Answers from TREE; each node in ``refuse`` is refused (429, Retry-After) so many
    times first. Every query takes one second of ``clock``."""

    def __init__(self, clock: Clock, refuse: dict[str, int], retry_after: float) -> None:
        super().__init__(TREE)
        self.clock, self.refuse, self.retry_after = clock, dict(refuse), retry_after

    def query(self, task: Task, timeout: float) -> Any:
        self.clock.advance(1.0)
        with self._lock:
            refused = self.refuse.get(task.id, 0) > 0
            if refused:
                self.refuse[task.id] -= 1
                self.queried.append(task.id)
        if refused:
            raise QueryError(
                "HTTP 429", transient=True, throttled=True, retry_after=self.retry_after
            )
        return super().query(task, timeout)


def make_job(attempts: int) -> Job:
    return job_from_dict(
        {
            "source": {"url": "http://127.0.0.1:9/features"},  # the fake client answers
            "request": {"url": "http://127.0.0.1:9/children"},
            "crawl": {"max_depth": 2},
            "retry": {"attempts": attempts, "max": 60},
            "levels": {"1": {"workers": 1}},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    job = make_job(5)
    store = Store.create(tmp_path / "p.db", job.text, job.origin, str(job.base_dir))
    try:
        yield store
    finally:
        store.close()


def attempts_of(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT item_id, attempts FROM nodes WHERE level = 1").fetchall()
    return dict(rows)


def crawl(store: Store, attempts: int, client: ThrottlingClient) -> Outcome:
    """The job run on ``store`` through the seam, on the client's clock."""
    job = make_job(attempts)
    clock = client.clock
    return run_bounded(Runner(job, store, client, Policies(job, clock=clock), clock=clock))


def test_the_worker_goes_on_while_a_throttled_node_waits(store: Store) -> None:
    client = ThrottlingClient(Clock(), {"F1": 1}, retry_after=1.5)
    outcome = crawl(store, 5, client)
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    # One worker: F1 refused, then F2 while F1 waits out its 1.5 s, then F1 again.
    first_retry = client.queried.index("F1", 1)
    assert client.queried[0] == "F1" and client.queried.index("F2") < first_retry
    assert attempts_of(store.path)["F1"] == 2  # both calls counted, across the parking


def test_a_node_throttled_on_every_attempt_goes_back_to_pending_not_failed(
    store: Store,
) -> None:
    """Parked rounds share the node's attempts: after ``attempts`` refusals it is released
    (the server keeps saying "too many": not the node's fault) and claimed again."""
    client = ThrottlingClient(Clock(), {"F3": 4}, retry_after=0.0)
    outcome = crawl(store, 3, client)
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert client.queried.count("F3") == 5  # 4 refusals, then the answer
    assert attempts_of(store.path)["F3"] == 5
