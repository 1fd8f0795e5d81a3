"""The writes of one transaction (``Transaction``), on a real checkpoint in ``tmp_path``:
claims, children and completion through the ``open_children`` counters, a late or repeated
result changing nothing, releases and resets, the level-1 list stored in chunks, and the
moves that keep the live counts equal to a count of the table."""

from __future__ import annotations

import sqlite3

import pytest

from resumer.checkpoint.store import Store
from resumer.model import COUNTED, STATUSES, Children, Failure, Release
from tests.unit.checkpoint.nodes import LEAF, item, load_roots, statuses


def open_children(store: Store, node_id: str) -> int:
    with sqlite3.connect(store.path) as db:
        return int(
            db.execute("SELECT open_children FROM nodes WHERE item_id = ?", (node_id,)).fetchone()[
                0
            ]
        )


def test_claim_marks_nodes_running_and_gives_the_parents_id(store: Store) -> None:
    a, _b = load_roots(store, "A", "B")
    store.save([Children(a.node, 1, [item("A.1")], 1)], LEAF)
    (child,) = store.claim(2, 10)
    assert (child.id, child.level, child.parent_id) == ("A.1", 2, "A")
    assert statuses(store) == {"A": "waiting", "B": "running", "A.1": "running"}
    assert store.claim(2, 10) == []


def test_children_are_pending_and_the_node_waits_for_them(store: Store) -> None:
    (a,) = load_roots(store, "A")
    fed = store.save([Children(a.node, 1, [item("A.1"), item("A.2")], 1)], LEAF)
    assert fed == {2}
    assert statuses(store)["A"] == "waiting"
    assert open_children(store, "A") == 2


def test_a_node_without_children_is_complete_and_completes_its_parent(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [], 1)], LEAF)
    assert statuses(store) == {"A": "complete"}
    assert store.source_status() == "complete"


def test_leaves_are_stored_complete_and_completion_propagates_to_the_top(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1"), item("A.2")], 1)], LEAF)
    a1, a2 = store.claim(2, 10)
    store.save([Children(a1.node, 2, [item("A.1.1")], 1)], LEAF)
    store.save([Children(a2.node, 2, [], 1)], LEAF)
    (a11,) = store.claim(3, 10)
    assert store.source_status() == "waiting"
    store.save([Children(a11.node, 3, [item("A.1.1.1"), item("A.1.1.2")], 1)], LEAF)
    assert set(statuses(store).values()) == {"complete"}
    assert store.source_status() == "complete"


def test_a_failed_grandchild_leaves_its_ancestors_waiting(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1"), item("A.2")], 1)], LEAF)
    a1, a2 = store.claim(2, 10)
    store.save([Failure(a1.node, 2, "HTTP 400", 1), Children(a2.node, 2, [], 1)], LEAF)
    assert statuses(store) == {"A": "waiting", "A.1": "failed", "A.2": "complete"}
    assert open_children(store, "A") == 1
    assert store.source_status() == "waiting"
    assert not store.has_work()


def test_a_second_result_for_the_same_node_changes_nothing(store: Store) -> None:
    (a,) = load_roots(store, "A")
    result = Children(a.node, 1, [item("A.1")], 1)
    store.save([result], LEAF)
    assert store.save([result, Children(a.node, 1, [item("X")], 1)], LEAF) == set()
    assert statuses(store) == {"A": "waiting", "A.1": "pending"}
    store.save([Failure(a.node, 1, "late", 1)], LEAF)
    assert statuses(store)["A"] == "waiting"


def test_children_are_unique_per_parent_and_position(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1")], 1)], LEAF)
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO nodes (parent_id, level, position, item_id, name, type, payload, status)"
            " VALUES (?, 2, 0, 'dup', '', '', '{}', 'pending')",
            (a.node,),
        )


def test_release_and_reset_put_nodes_back_to_pending(store: Store) -> None:
    a, _b = load_roots(store, "A", "B")
    store.save([Release(a.node, 1, 2)], LEAF)
    assert statuses(store) == {"A": "pending", "B": "running"}
    assert store.reset_running() == 1
    assert statuses(store) == {"A": "pending", "B": "pending"}
    assert store.pending_levels() == {1}


def test_the_moves_of_each_transaction_keep_the_live_counts_equal_to_the_counts(
    store: Store,
) -> None:
    """A random crawl of claims, children, leaves, failures, releases, late repeats and
    resets, failed nodes retried: after every transaction, the live counts the store
    keeps from its moves and the counts it keeps in the table equal a count of the
    table."""
    import random

    rng = random.Random(7)
    load_roots(store, *(f"R{i}" for i in range(6)))
    done: list[Children] = []
    retried, seen = 0, set()
    for step in range(60):
        with store.transaction() as tx:
            results: list[Children | Failure | Release] = []
            for level in (1, 2, 3):
                for task in tx.claim(level, rng.randint(0, 3)):
                    kind = rng.random()
                    if kind < 0.1:
                        results.append(Failure(task.node, level, "HTTP 400", 1))
                    elif kind < 0.2:
                        results.append(Release(task.node, level, 1))
                    else:
                        ids = [f"{task.id}.{n}" for n in range(rng.randint(0, 3))]
                        results.append(Children(task.node, level, [item(i) for i in ids], 1))
            if done and rng.random() < 0.3:
                results.append(rng.choice(done))  # a late repeat changes nothing
            done += [r for r in results if isinstance(r, Children)]
            tx.save(results, LEAF)
            if step % 20 == 19:
                tx.reset_running()
            if step in (30, 40):
                retried += tx.retry_failed()
        # the live counts, the counts the store keeps, and a real count of the nodes agree
        assert store.live_counts() == store.counts() == store.counted(), f"step {step}"
        seen |= {status for c in store.counts().values() for status, n in c.items() if n}
    assert seen == set(STATUSES)  # every status was met
    assert retried  # and some failed nodes were put back


def test_the_source_list_is_stored_in_chunks_all_in_order(store: Store) -> None:
    from resumer.checkpoint.transaction import SOURCE_CHUNK

    count = 2 * SOURCE_CHUNK + 5
    (source,) = store.claim(0, 1)
    items = (item(f"R{n}") for n in range(count))  # a generator, as a source file gives
    with store.transaction() as tx:
        assert tx.save_source(source.node, items, 1, LEAF) == count
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT item_id, position FROM nodes WHERE level = 1 ORDER BY id")
        assert [r for r in rows] == [(f"R{n}", n) for n in range(count)]
    assert open_children(store, "") == count
    expected = {1: {**dict.fromkeys(COUNTED, 0), "pending": count}}
    assert store.live_counts() == store.counts() == expected
    with store.transaction() as tx:  # a second time: the job's node is no longer running
        assert tx.save_source(source.node, iter([item("X")]), 1, LEAF) == 0
    assert "X" not in statuses(store)


def test_a_source_list_at_the_leaf_level_completes_the_job(store: Store) -> None:
    (source,) = store.claim(0, 1)
    with store.transaction() as tx:
        tx.save_source(source.node, [item("A"), item("B")], 1, leaf_level=1)
    assert statuses(store) == {"A": "complete", "B": "complete"}
    assert store.source_status() == "complete"


# -- leaves and drops by rule ----------------------------------------------------------


def leaf_rules(store: Store) -> dict[str, int | None]:
    with sqlite3.connect(store.path) as db:
        return dict(db.execute("SELECT item_id, leaf_rule FROM nodes WHERE level > 0"))


def test_a_leaf_by_rule_is_complete_and_its_parent_waits_only_for_the_others(
    store: Store,
) -> None:
    (a,) = load_roots(store, "A")
    children = [item("A.1")._replace(leaf=2), item("A.2"), item("A.3")._replace(leaf=1)]
    assert store.save([Children(a.node, 1, children, 1)], LEAF) == {2}
    assert statuses(store) == {
        "A": "waiting",
        "A.1": "complete",
        "A.2": "pending",
        "A.3": "complete",
    }
    assert leaf_rules(store) == {"A": None, "A.1": 2, "A.2": None, "A.3": 1}
    assert open_children(store, "A") == 1
    assert [task.id for task in store.claim(2, 10)] == ["A.2"]  # never a leaf by rule
    counts = store.counts()[2]
    assert (counts["complete"], counts["leaf_by_rule"], counts["running"]) == (2, 2, 1)
    assert store.check() == []


def test_a_node_whose_children_are_all_leaves_by_rule_completes_at_once(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1")._replace(leaf=1)], 1)], LEAF)
    assert statuses(store) == {"A": "complete", "A.1": "complete"}
    assert store.source_status() == "complete"
    assert store.check() == []


def test_dropped_items_are_not_stored_but_counted_and_positions_stay_dense(
    store: Store,
) -> None:
    (a,) = load_roots(store, "A")
    dropped = item("A.1")._replace(payload="", drop=1)
    children = [dropped, item("A.2"), item("A.3")._replace(drop=2)]
    store.save([Children(a.node, 1, children, 1)], LEAF)
    assert statuses(store) == {"A": "waiting", "A.2": "pending"}
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT position FROM nodes WHERE item_id = 'A.2'").fetchone() == (0,)
    assert store.counts()[2]["dropped"] == 2
    assert store.live_counts()[2]["dropped"] == 2
    assert store.check() == []


def test_a_node_whose_items_are_all_dropped_is_complete(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1")._replace(drop=1)], 1)], LEAF)
    assert statuses(store) == {"A": "complete"}
    assert store.counts()[2] == {**dict.fromkeys(COUNTED, 0), "dropped": 1}
    assert store.check() == []


def test_level_one_items_are_shaped_too(store: Store) -> None:
    (source,) = store.claim(0, 1)
    roots = [item("A")._replace(leaf=1), item("B")._replace(drop=1), item("C")]
    store.save([Children(source.node, 0, roots, 1)], LEAF)
    assert statuses(store) == {"A": "complete", "C": "pending"}
    assert store.counts()[1]["leaf_by_rule"] == 1
    assert store.counts()[1]["dropped"] == 1
    assert store.check() == []


def test_at_the_leaf_level_a_leaf_rule_changes_nothing(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1")], 1)], LEAF)
    (a1,) = store.claim(2, 1)
    store.save([Children(a1.node, 2, [item("A.1.1")], 1)], LEAF)
    (a11,) = store.claim(3, 1)
    store.save([Children(a11.node, 3, [item("A.1.1.1")._replace(leaf=1)], 1)], LEAF)
    assert store.counts()[4]["leaf_by_rule"] == 0
    assert leaf_rules(store)["A.1.1.1"] is None
    assert store.source_status() == "complete"


def test_check_finds_a_leaf_by_rule_with_children(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1")], 1)], LEAF)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE nodes SET leaf_rule = 1 WHERE item_id = 'A'")
    assert any("leaf by rule" in problem for problem in store.check())
