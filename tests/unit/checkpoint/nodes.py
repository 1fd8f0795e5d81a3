"""Nodes for the checkpoint's unit tests: items, loading roots, and a look at the nodes'
statuses through a connection of the test's own."""

from __future__ import annotations

import sqlite3

from resumer.checkpoint.store import Store
from resumer.model import Children, Item, Task

LEAF = 4  # the leaf level of the jobs these tests store


def item(node_id: str) -> Item:
    return Item(node_id, f"name {node_id}", "t", f'{{"id":"{node_id}"}}')


def load_roots(store: Store, *ids: str) -> list[Task]:
    (source,) = store.claim(0, 1)
    store.save([Children(source.node, 0, [item(i) for i in ids], 1)], LEAF)
    return store.claim(1, 100)


def statuses(store: Store) -> dict[str, str]:
    with sqlite3.connect(store.path) as db:
        return dict(db.execute("SELECT item_id, status FROM nodes WHERE level > 0"))
