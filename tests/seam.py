"""The runner's seam, ``Runner(job, store, client, policies)``, driven in-process: a fake
client answering from a ``FakeTree``, and a run bounded in time so a hang fails."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from resumer.crawler.runner import Runner
from resumer.fake.tree import FakeTree
from resumer.model import Item, Task
from resumer.results import Outcome

RUN_LIMIT = 8.0  # seconds any run may take (each takes well under one)


def as_item(record: dict[str, Any]) -> Item:
    return Item(record["id"], record["name"], record["type"], json.dumps(record))


class TreeClient:
    """The client's seam (``load_roots``, ``query``), answering from ``tree`` in-process."""

    def __init__(self, tree: FakeTree) -> None:
        self.tree = tree
        self.queried: list[str] = []
        self._lock = threading.Lock()

    def load_roots(self) -> Any:
        return [as_item(record) for record in self.tree.root_items()]

    def query(self, task: Task, timeout: float) -> Any:
        with self._lock:
            self.queried.append(task.id)
        return [as_item(record) for record in self.tree.children(task.id, task.level)]


def run_bounded(runner: Runner) -> Outcome:
    """``runner.run()`` on a thread of its own, joined within RUN_LIMIT: a hang fails."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["outcome"] = runner.run()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, name="coordinator", daemon=True)
    thread.start()
    thread.join(RUN_LIMIT)
    if thread.is_alive():
        runner.request_stop()
        thread.join(RUN_LIMIT)
        pytest.fail(f"the run did not end within {RUN_LIMIT}s")
    if "error" in box:
        raise box["error"]
    outcome: Outcome = box["outcome"]
    return outcome
