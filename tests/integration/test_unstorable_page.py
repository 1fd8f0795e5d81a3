"""A page whose children cannot be read again when stored fails its node, not the run.

A big answer's items stay in its bytes (``Streamed``) and are read again in the
coordinator's thread, deeper in the stack than the worker that checked them: an
item nested within a few frames of the recursion limit may pass there and not here.
The batch is then stored again with that node failed; the crawl goes on. Driven
through the runner's seam with a fake client.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resumer.checkpoint.store import Store
from resumer.crawler.policyset import Policies
from resumer.crawler.runner import Runner
from resumer.fake.tree import FakeTree
from resumer.job.loader import job_from_dict
from resumer.model import Item, Streamed, Task
from tests.seam import TreeClient, run_bounded

TREE = FakeTree(seed=8, roots=4, fanout=(5, 3), even=True)


class TooDeepAgain(Streamed):
    """Children that were counted, and whose reading fails half-way on being stored."""

    def __init__(self, items: list[Item]) -> None:
        super().__init__(len(items), waits=len(items))
        self.items = items

    def __iter__(self) -> Iterator[Item]:
        yield from self.items[:2]
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")


class OnePageTooDeep(TreeClient):
    def __init__(self, node: str) -> None:
        super().__init__(TREE)
        self.node = node

    def query(self, task: Task, timeout: float) -> Any:
        items = super().query(task, timeout)
        return TooDeepAgain(items) if task.id == self.node else items


def test_a_page_that_cannot_be_read_again_fails_its_node_and_the_crawl_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = job_from_dict(
        {
            "source": {"url": "http://127.0.0.1:9/features"},  # the fake client answers
            "request": {"url": "http://127.0.0.1:9/children"},
            "crawl": {"max_depth": 3},
        }
    )
    store = Store.create(tmp_path / "u.db", job.text, job.origin, str(job.base_dir))
    try:
        outcome = run_bounded(Runner(job, store, OnePageTooDeep("F2"), Policies(job)))
    finally:
        store.close()
    assert (outcome.exit_status, outcome.failed) == (1, 1)
    with sqlite3.connect(tmp_path / "u.db") as db:
        failed = db.execute("SELECT item_id, last_error FROM nodes WHERE status = 'failed'")
        assert failed.fetchall() == [("F2", "an item is nested too deeply to store")]
        stored = {row[0] for row in db.execute("SELECT item_id FROM nodes WHERE level > 0")}
        counts = dict(db.execute("SELECT status, SUM(n) FROM counts GROUP BY status"))
    # Nothing of F2's half-read page is kept; every other node and subtree is.
    expected = {item["id"] for _, item in TREE.walk(3)}
    under_f2 = {i for i in expected if i.startswith("F2.")}
    assert stored == expected - under_f2
    assert counts.get("failed") == 1 and counts.get("running", 0) == 0
    assert counts.get("complete", 0) + counts.get("waiting", 0) == len(stored) - 1
    assert "failed: level 1 id 'F2': an item is nested too deeply to store" in caplog.text
