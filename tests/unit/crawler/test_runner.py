"""The coordinator's one iteration, ``Runner.step``, driven one step at a time.

No worker thread runs: the test is the workers (``Workers.work_one`` answers one
queued task from a fake client, in the test's thread), so what each step finds
waiting is exactly what the test put there. The store is a real checkpoint in
``tmp_path`` behind a recorder that notes what each committed transaction
claimed and saved; the clock moves only when told.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from resumer.checkpoint.store import Store
from resumer.checkpoint.transaction import Transaction
from resumer.crawler.policyset import Policies
from resumer.crawler.runner import QUEUE_DEPTH, Runner
from resumer.fake.tree import FakeTree
from resumer.job.loader import job_from_dict
from resumer.job.settings import Job
from resumer.model import Result
from tests.seam import TreeClient

TREE = FakeTree(seed=21, roots=5, fanout=(3, 3), even=True)  # levels 1 and 2 are queried
WORKERS = {1: 2, 2: 3}
MAX_STEPS = 100  # more steps than any drive here needs: a loop that never ends fails


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Noted:
    """What one committed transaction did: (level, asked, got) per claim, results saved."""

    claims: list[tuple[int, int, int]] = field(default_factory=list)
    saved: list[Result] = field(default_factory=list)


class NotingTransaction:
    """A real transaction that notes its claims and saves."""

    def __init__(self, tx: Transaction, noted: Noted) -> None:
        self._tx = tx
        self._noted = noted

    def claim(self, level: int, limit: int) -> Any:
        tasks = self._tx.claim(level, limit)
        self._noted.claims.append((level, limit, len(tasks)))
        return tasks

    def save(self, results: list[Result], *args: Any) -> set[int]:
        self._noted.saved.extend(results)
        return self._tx.save(results, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class NotingStore:
    """A real Store whose committed transactions are noted in ``committed``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.committed: list[Noted] = []

    @contextmanager
    def transaction(self) -> Iterator[NotingTransaction]:
        noted = Noted()
        with self._store.transaction() as tx:
            yield NotingTransaction(tx, noted)
        self.committed.append(noted)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def make_job() -> Job:
    return job_from_dict(
        {
            "source": {"url": "http://127.0.0.1:9/features"},  # the fake client answers
            "request": {"url": "http://127.0.0.1:9/children"},
            "crawl": {"max_depth": 3},
            "retry": {"attempts": 1},
            "levels": {str(level): {"workers": n} for level, n in WORKERS.items()},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NotingStore]:
    job = make_job()
    store = Store.create(tmp_path / "s.db", job.text, job.origin, str(job.base_dir))
    try:
        yield NotingStore(store)
    finally:
        store.close()


@pytest.fixture
def batches() -> list[list[Result]]:
    return []


@pytest.fixture
def runner(store: NotingStore, batches: list[list[Result]]) -> Runner:
    """A runner that has begun (the level-1 nodes loaded), its worker threads not started."""
    job, clock = make_job(), Clock()
    runner = Runner(
        job,
        cast(Store, store),
        TreeClient(TREE),
        Policies(job, clock=clock),
        on_results=batches.append,
        clock=clock,
    )
    runner.begin()
    store.committed.clear()
    return runner


def work_all(runner: Runner, level: int) -> int:
    """Answer every task queued for ``level``, as its workers would; how many."""
    count = runner.workers.queued(level)
    for _ in range(count):
        assert runner.workers.work_one(level)
    return count


def drive(runner: Runner) -> int:
    """Step until the work runs out, answering every queued task between steps; the
    number of steps that returned True."""
    for steps in range(MAX_STEPS):
        if not runner.step():
            return steps
        for level in WORKERS:
            work_all(runner, level)
    pytest.fail(f"the work did not run out within {MAX_STEPS} steps")


def test_the_first_step_claims_workers_times_queue_depth_tasks_of_the_hungry_level(
    runner: Runner, store: NotingStore
) -> None:
    assert runner.step()
    (first,) = store.committed
    claim = WORKERS[1] * QUEUE_DEPTH
    assert first.claims == [(1, claim, claim)]  # level 2 has no node yet: not hungry
    assert first.saved == []
    assert runner.workers.queued(1) == claim
    assert runner.counts()[1]["running"] == claim


def test_results_that_arrived_are_saved_in_one_transaction_and_the_tally_follows(
    runner: Runner, store: NotingStore, batches: list[list[Result]]
) -> None:
    runner.step()
    answered = work_all(runner, 1)
    store.committed.clear()
    assert runner.step()
    (second,) = store.committed
    assert len(second.saved) == answered == WORKERS[1] * QUEUE_DEPTH
    assert [len(batch) for batch in batches] == [answered]
    assert runner.counts() == store.counts()  # the tally, without a scan, says what a scan says


def test_one_step_tops_up_every_hungry_level_deeper_first(
    runner: Runner, store: NotingStore
) -> None:
    """Saving level-1 results makes level 2 hungry in the same step: both are claimed,
    level 2 first (depth-first), each up to its workers x QUEUE_DEPTH."""
    runner.step()
    work_all(runner, 1)
    store.committed.clear()
    runner.step()
    (second,) = store.committed
    left_in_level_1 = TREE.roots - WORKERS[1] * QUEUE_DEPTH
    assert second.claims == [
        (2, WORKERS[2] * QUEUE_DEPTH, WORKERS[2] * QUEUE_DEPTH),
        (1, WORKERS[1] * QUEUE_DEPTH, left_in_level_1),
    ]


def test_no_step_claims_once_a_stop_is_requested(runner: Runner, store: NotingStore) -> None:
    runner.request_stop()
    runner.step()
    assert all(noted.claims == [] for noted in store.committed)
    assert runner.workers.queued(1) == 0


def test_step_returns_false_when_the_work_runs_out_and_every_node_is_complete(
    runner: Runner, store: NotingStore
) -> None:
    drive(runner)
    assert not runner.step()  # and stays so
    counts = store.counts()
    assert {status for level in counts.values() for status, n in level.items() if n} == {"complete"}
    assert sum(level["complete"] for level in counts.values()) == 5 + 5 * 3 + 5 * 3 * 3
    assert runner.counts() == counts


def test_each_level_is_reported_done_once_upper_levels_first(
    runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="resumer.crawler.runner")
    drive(runner)
    done = [r.getMessage() for r in caplog.records if "every query done" in r.getMessage()]
    assert done == ["level 1: every query done", "level 2: every query done"]
