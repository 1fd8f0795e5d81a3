"""Two crawls compared (``resumer.checkpoint.diff``), on checkpoints built by hand: each
kind of change, siblings sharing an id, moves only where ids are unique, ignored payload
fields, one level only, unfinished crawls, and the tallies per level."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from resumer.checkpoint.diff import Diff, Difference, Tally
from resumer.checkpoint.store import Store
from resumer.model import Children, Item

LEAF = 3


@dataclass
class N:
    """A node of a hand-made tree."""

    id: str
    children: list[N] = field(default_factory=list)
    name: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    def item(self) -> Item:
        payload = {"id": self.id, **self.payload}
        return Item(self.id, self.name or f"name {self.id}", "t", json.dumps(payload))


def crawl(path: Path, roots: list[N], *, unfinished: frozenset[str] = frozenset()) -> Store:
    """A checkpoint of ``roots`` crawled to level LEAF; the nodes named in ``unfinished``
    are claimed but never answered (left running)."""
    store = Store.create(path, "job text", "job.toml", "/")
    (source,) = store.claim(0, 1)
    store.save([Children(source.node, 0, [n.item() for n in roots], 1)], LEAF)
    held = {0: roots}  # a node's row -> its children in the hand-made tree
    for level in range(1, LEAF):
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT id, parent_id, position FROM nodes WHERE level = ?", (level,))
            mine = {row: held[parent][position] for row, parent, position in rows}
        answers = []
        for task in store.claim(level, 10_000):
            node = mine[task.node]
            held[task.node] = node.children
            if node.id not in unfinished:
                answers.append(Children(task.node, level, [c.item() for c in node.children], 1))
        store.save(answers, LEAF)
    return store


def changes(
    tmp_path: Path, old: list[N], new: list[N], **options: Any
) -> tuple[list[Difference], list[Tally]]:
    unfinished = options.pop("unfinished", frozenset())
    before = crawl(tmp_path / "old.db", old)
    after = crawl(tmp_path / "new.db", new, unfinished=unfinished)
    try:
        diff = Diff(before, after, **options)
        return list(diff.changes()), diff.tallies()
    finally:
        before.close()
        after.close()


def kinds(found: list[Difference]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(d.change, "/".join(d.path), d.fields) for d in found]


def tree() -> list[N]:
    return [
        N("A", [N("A1", [N("A1a"), N("A1b")]), N("A2", [N("A2a")])]),
        N("B", [N("B1", [N("B1a")])]),
    ]


def test_the_same_tree_twice_has_no_change(tmp_path: Path) -> None:
    found, tallies = changes(tmp_path, tree(), tree())
    assert found == []
    assert tallies == [Tally(1, 0, 0, 0, 0, 2), Tally(2, 0, 0, 0, 0, 3), Tally(3, 0, 0, 0, 0, 4)]


def test_each_kind_of_change_is_found_with_its_fields(tmp_path: Path) -> None:
    new = tree()
    new[0].children[0].name = "renamed"  # A1: a name
    new[0].children[1].children[0].payload = {"price": 2}  # A2a: a payload field
    new[0].children[1].children.append(N("A2b"))  # added
    del new[1].children[0].children[0]  # B1a: removed
    new.append(N("C", [N("C1")]))  # a new subtree
    found, tallies = changes(tmp_path, tree(), new)
    assert kinds(found) == [
        ("changed", "A/A1", ("name",)),
        ("changed", "A/A2/A2a", ("payload.price",)),
        ("removed", "B/B1/B1a", ()),
        ("added", "A/A2/A2b", ()),
        ("added", "C", ()),
        ("added", "C/C1", ()),
    ]
    renamed = found[0]
    assert renamed.before is not None and renamed.before.name == "name A1"
    assert renamed.after is not None and renamed.after.name == "renamed"
    assert found[2].after is None and found[3].before is None
    assert tallies == [Tally(1, 1, 0, 0, 0, 2), Tally(2, 1, 0, 1, 0, 2), Tally(3, 1, 1, 1, 0, 2)]


def test_a_subtree_moved_under_another_parent_is_one_move(tmp_path: Path) -> None:
    new = tree()
    moved = new[0].children.pop(0)  # A1 and its children, from A ...
    moved.children[0].name = "changed on the way"
    new[1].children.append(moved)  # ... to B
    found, tallies = changes(tmp_path, tree(), new)
    assert kinds(found) == [("moved", "B/A1", ()), ("changed", "B/A1/A1a", ("name",))]
    assert found[0].moved_from == ("A", "A1")
    assert [(t.level, t.moved, t.changed, t.unchanged) for t in tallies] == [
        (1, 0, 0, 2),
        (2, 1, 0, 2),
        (3, 0, 1, 3),
    ]


def test_without_unique_ids_a_move_is_a_removal_and_an_addition(tmp_path: Path) -> None:
    old = [N("A", [N("1", [N("x")])]), N("B", [N("1")])]  # "1" twice in the tree
    new = [N("A", []), N("B", [N("1"), N("1", [N("x")])])]
    found, _ = changes(tmp_path, old, new)
    # x is unique: moved, from under one "1" to under another (not the same node).
    assert kinds(found) == [("moved", "B/1/x", ()), ("removed", "A/1", ()), ("added", "B/1", ())]
    assert found[0].moved_from == ("A", "1", "x")


def test_siblings_sharing_an_id_pair_in_order(tmp_path: Path) -> None:
    old = [N("A", [N("x", name="first"), N("x", name="second")])]
    new = [N("A", [N("x", name="first"), N("x", name="second, renamed")])]
    found, _ = changes(tmp_path, old, new)
    assert kinds(found) == [("changed", "A/x", ("name",))]
    assert found[0].after is not None and found[0].after.name == "second, renamed"


def test_ignored_payload_fields_are_left_out(tmp_path: Path) -> None:
    old, new = tree(), tree()
    old[0].payload = {"seen": 1, "meta": {"at": 1, "keep": 1}}
    new[0].payload = {"seen": 2, "meta": {"at": 2, "keep": 1}}
    found, _ = changes(tmp_path, old, new, ignore=["seen", "meta.at"])
    assert found == []
    new[0].payload["meta"] = {"at": 2, "keep": 2}
    (tmp_path / "again").mkdir()
    found, _ = changes(tmp_path / "again", old, new, ignore=["seen", "meta.at"])
    assert kinds(found) == [("changed", "A", ("payload.meta",))]


def test_one_level_only(tmp_path: Path) -> None:
    new = tree()
    new[0].children[0].name = "renamed"
    new[0].children[0].children[0].name = "renamed too"
    found, tallies = changes(tmp_path, tree(), new, level=3)
    assert kinds(found) == [("changed", "A/A1/A1a", ("name",))]
    assert sum(t.changed for t in tallies) == 2  # the tallies count every level


def test_an_unfinished_node_is_said_and_its_missing_children_are_not_removed(
    tmp_path: Path,
) -> None:
    found, _ = changes(tmp_path, tree(), tree(), unfinished=frozenset({"A1"}), partial=True)
    assert [(d.change, "/".join(d.path), d.unfinished_in) for d in found] == [
        ("unfinished", "A/A1", ("new",))
    ]


@pytest.mark.parametrize("payload", ['"text"', "[1, 2]"])
def test_a_payload_that_is_not_an_object_changes_whole(tmp_path: Path, payload: str) -> None:
    before = crawl(tmp_path / "old.db", [N("A")])
    after = crawl(tmp_path / "new.db", [N("A")])
    with sqlite3.connect(after.path) as db:
        db.execute("UPDATE nodes SET payload = ? WHERE item_id = 'A'", (payload,))
    found = list(Diff(before, after).changes())
    before.close()
    after.close()
    assert kinds(found) == [("changed", "A", ("payload",))]
