"""Nodes for the checkpoint's unit tests: items, loading roots, a look at the nodes'
statuses through a connection of the test's own, and Alembic run on a checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def alembic(path: Path, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from resumer.checkpoint.tables import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)
    engine.dispose()
