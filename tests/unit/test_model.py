"""The vocabulary every layer shares: a claimed task starts with no calls counted, a failure's
own id is optional, the tuples cannot be changed, and a run's estimated total of queries is
what is done plus what remains."""

from __future__ import annotations

import pytest

from resumer.model import STATUSES, Children, Failure, Item, LiveFigures, Release, Result, Task


def test_a_task_starts_with_no_calls_counted() -> None:
    task = Task(7, 2, "F1.3", "Feature 1.3", "core", "F1")
    assert (task.attempts, task.tries) == (0, 0)
    with pytest.raises(AttributeError):
        task.attempts = 1  # type: ignore[misc]


def test_a_failure_names_its_node_only_when_told() -> None:
    assert Failure(3, 1, "HTTP 400", 2).id == ""
    assert Failure(3, 1, "HTTP 400", 2, id="F4").id == "F4"


def test_a_result_is_children_a_failure_or_a_release() -> None:
    results = [
        Children(1, 1, [Item("a", "A", "t", "{}")], 1),
        Failure(2, 1, "x", 1),
        Release(3, 1, 0),
    ]
    assert all(isinstance(result, Result) for result in results)
    assert not isinstance(Task(1, 1, "a", "A", "t", ""), Result)


def test_the_estimated_total_is_done_plus_remaining() -> None:
    figures = LiveFigures(
        "closed", 8, 3, None, done=120, remaining=30.5, queries_per_second=None, eta=None
    )
    assert figures.estimated_total == 150.5


def test_the_statuses_run_in_a_nodes_life_order() -> None:
    assert STATUSES == ("pending", "running", "waiting", "complete", "failed")
