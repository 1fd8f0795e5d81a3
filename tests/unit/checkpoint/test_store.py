"""The checkpoint: transitions, completion propagation, idempotence, opening rules."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumer.checkpoint.store import SOURCE_NODE, Store
from resumer.checkpoint.tables import SCHEMA_REVISION
from resumer.checkpoint.transaction import Health
from resumer.errors import CheckpointError
from resumer.model import STATUSES, Children, Failure, Item, Release, Task

LEAF = 4


def item(node_id: str) -> Item:
    return Item(node_id, f"name {node_id}", "t", f'{{"id":"{node_id}"}}')


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.create(tmp_path / "c.db", "job text", "job.toml", str(tmp_path))
    yield store
    store.close()


def load_roots(store: Store, *ids: str) -> list[Task]:
    (source,) = store.claim(0, 1)
    store.save([Children(source.node, 0, [item(i) for i in ids], 1)], LEAF)
    return store.claim(1, 100)


def statuses(store: Store) -> dict[str, str]:
    with sqlite3.connect(store.path) as db:
        return dict(db.execute("SELECT item_id, status FROM nodes WHERE level > 0"))


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


def test_counts_cover_every_status(store: Store) -> None:
    a, b = load_roots(store, "A", "B")
    store.save([Children(a.node, 1, [item("A.1")], 1), Failure(b.node, 1, "x", 1)], LEAF)
    counts = store.counts()
    assert counts[1] == {"pending": 0, "running": 0, "waiting": 1, "complete": 0, "failed": 1}
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


def test_the_known_schema_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from resumer.checkpoint.tables import MIGRATIONS_DIR, SCHEMA_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


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


def test_a_new_checkpoint_has_the_schema_the_migrations_build(tmp_path: Path) -> None:
    """A new checkpoint is created from schema.HEAD_SCHEMA, without Alembic: it must be
    what running every migration on an empty database gives."""
    created = Store.create(tmp_path / "created.db", "job text", "job.toml", "/jobs")
    created.close()
    migrated = tmp_path / "migrated.db"
    _alembic(migrated, "upgrade", "head")
    assert _schema(created.path) == _schema(migrated)
    assert len(_schema(migrated)) == 9  # 4 tables, 3 automatic indexes, 2 partial ones


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    """The schema as SQLite records it, with the whitespace of the SQL text normalised."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        return [(kind, name, sql and _tokens(sql)) for kind, name, sql in rows]


def _tokens(sql: str) -> str:
    return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()


def _alembic(path: Path, action: str, revision: str) -> None:
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


def test_an_older_checkpoint_is_read_as_it_is_and_upgraded_only_by_a_writer(
    store: Store,
) -> None:
    load_roots(store, "A")
    store.close()
    _alembic(store.path, "downgrade", "0005")
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
    _alembic(path, "downgrade", "0001")
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(job)")}
    assert "breaker_state" not in columns


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
    expected = {1: {**dict.fromkeys(STATUSES, 0), "pending": count}}
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
    assert store.live_counts()[1] == {**dict.fromkeys(STATUSES, 0), "pending": 2, "waiting": 1}


def test_a_reopened_checkpoint_starts_its_live_counts_from_the_kept_ones(store: Store) -> None:
    (a,) = load_roots(store, "A")
    store.save([Children(a.node, 1, [item("A.1"), item("A.2")], 1)], LEAF)
    again = Store.open(store.path)
    assert again.live_counts() == store.live_counts() == store.counted()
    again.close()
