"""The checkpoint store: creating and opening a checkpoint (the refusals, migrations, an
older checkpoint upgraded in place or read from a copy), the counts, and the live counts
moved once a transaction has committed.

The writes of one transaction (claims, completion, idempotence, the level-1 list) are
tests/unit/checkpoint/test_transaction.py's; the schema's, test_tables.py's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from resumer.checkpoint.store import SOURCE_NODE, Store
from resumer.checkpoint.tables import SCHEMA_REVISION
from resumer.checkpoint.transaction import Health
from resumer.errors import CheckpointError
from resumer.model import COUNTED, Children, Failure, Release
from tests.unit.checkpoint.nodes import LEAF, alembic, item, load_roots, statuses


def test_counts_cover_every_status(store: Store) -> None:
    a, b = load_roots(store, "A", "B")
    store.save([Children(a.node, 1, [item("A.1")], 1), Failure(b.node, 1, "x", 1)], LEAF)
    counts = store.counts()
    assert counts[1] == {**dict.fromkeys(COUNTED, 0), "waiting": 1, "failed": 1}
    assert counts[2]["pending"] == 1


def test_a_database_that_holds_a_job_is_not_created_again(store: Store) -> None:
    with pytest.raises(CheckpointError, match="already holds a job; continue it with"):
        Store.create(store.path, "other", "other.toml", ".")


def test_opening_a_missing_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such database"):
        Store.open(tmp_path / "none.db")


def test_opening_a_file_that_is_not_a_database_says_so(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CheckpointError, match="not a resumer database"):
        Store.open(path)


def test_opening_applies_migrations_and_keeps_the_job(store: Store) -> None:
    again = Store.open(store.path)
    assert again.job().text == "job text"
    assert again.source_status() == "pending"
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (
            SCHEMA_REVISION,
        )
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again.close()


def test_the_source_node_is_the_jobs_own_row(store: Store) -> None:
    (source,) = store.claim(0, 5)
    assert source.node == SOURCE_NODE
    assert store.claim(0, 5) == []


def test_a_checkpoint_from_a_newer_resumer_is_refused(store: Store) -> None:
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(CheckpointError, match="newer resumer"):
        Store.open(store.path)
    with pytest.raises(CheckpointError, match="schema is 9999"):
        Store.open(store.path, migrate=False)


def test_an_older_checkpoint_is_upgraded_in_place_keeping_its_work(store: Store) -> None:
    load_roots(store, "A")
    store.close()
    _downgrade_to_first(store.path)
    upgraded = Store.open(store.path)
    assert upgraded.revision() == SCHEMA_REVISION
    assert statuses(upgraded) == {"A": "running"}
    assert upgraded.health() == Health(None, None, None, 0)
    upgraded.close()


def test_an_older_checkpoint_is_read_as_it_is_and_upgraded_only_by_a_writer(
    store: Store,
) -> None:
    load_roots(store, "A")
    store.close()
    alembic(store.path, "downgrade", "0005")
    before = store.path.read_bytes()
    reader = Store.open(store.path, migrate=False)  # status, export, check
    assert (reader.revision(), statuses(reader)) == (SCHEMA_REVISION, {"A": "running"})
    reader.close()
    assert store.path.read_bytes() == before  # read from an upgraded copy, left as it was
    assert not list(store.path.parent.glob("*.bak"))
    writer = Store.open(store.path)  # resume
    assert (writer.revision(), statuses(writer)) == (SCHEMA_REVISION, {"A": "running"})
    writer.close()
    (backup,) = store.path.parent.glob("*.bak")
    assert backup.name == f"{store.path.name}.before-{SCHEMA_REVISION}.bak"
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0005",)


def _downgrade_to_first(path: Path) -> None:
    """Take a checkpoint back to revision 0001, as an older resumer left it."""
    alembic(path, "downgrade", "0001")
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(job)")}
    assert "breaker_state" not in columns


def test_every_write_moves_the_live_counts_once_it_has_committed(store: Store) -> None:
    a, b, c = load_roots(store, "A", "B", "C")  # Store.claim and Store.save
    store.save([Children(a.node, 1, [item("A.1")], 1), Failure(b.node, 1, "x", 1)], LEAF)
    assert store.live_counts() == store.counted()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.save([Release(c.node, 1, 1)], LEAF)
        raise RuntimeError("rolled back")
    assert store.live_counts() == store.counted()  # C is still running, as the table says
    assert store.retry_failed() == 1
    assert store.reset_running() == 1
    assert store.live_counts() == store.counted()
    assert store.live_counts()[1] == {**dict.fromkeys(COUNTED, 0), "pending": 2, "waiting": 1}


def test_a_reopened_checkpoint_starts_its_live_counts_from_the_kept_ones(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1"), item("A.2")], 1)], LEAF)
    again = Store.open(store.path)
    assert again.live_counts() == store.live_counts() == store.counted()
    again.close()
