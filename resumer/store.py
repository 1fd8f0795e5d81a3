"""The checkpoint: every table and every SQL statement of resumer.

SQLite through SQLAlchemy 2: WAL, ``synchronous=NORMAL``, foreign keys, a long
busy timeout, and every write transaction begun IMMEDIATE (a deferred one that
reads then writes fails at once with SQLITE_BUSY in WAL mode). The schema is
Alembic's (``migrations/``), applied when a job is created or resumed.

The hot path (``claim``, ``save``) uses the driver's cursor inside the
SQLAlchemy transaction: no ORM objects, no statement compilation per node.
Invariants kept here:

- a node's result (children + its own status) is one transaction, applied only
  while the node is ``running``: a second or late result changes nothing;
- children are unique per (parent, position);
- a node completes when its last open child completes, in the same transaction,
  through an ``open_children`` counter (O(depth), not a scan).

This module makes no HTTP call and knows nothing of templates or threads.
"""

from __future__ import annotations

import importlib.resources
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import NullPool

from resumer.errors import CheckpointError
from resumer.model import STATUSES, Children, Failure, Item, Release, Result, Task

BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for SQLite's lock
SOURCE_NODE = 0  # the job's own row: its children are the level-1 nodes
MIGRATIONS_DIR = Path(str(importlib.resources.files("resumer.migrations")))


@dataclass(frozen=True, slots=True)
class JobRecord:
    text: str
    origin: str
    base_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    run_seconds: float


class NodeRow(NamedTuple):
    """A node as the export reads it."""

    node: int
    level: int
    id: str
    name: str
    type: str
    payload: str
    status: str
    error: str | None
    position: int


Counts = dict[int, dict[str, int]]


def _engine(path: Path, *, immediate: bool) -> Engine:
    # NullPool: a connection never outlives its use, so none is shared across
    # threads or carried across fork(); opening a SQLite file is cheap.
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, _record: Any) -> None:
        dbapi.isolation_level = None  # we issue BEGIN ourselves
        dbapi.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        dbapi.execute("PRAGMA foreign_keys = ON")
        dbapi.execute("PRAGMA journal_mode = WAL")
        dbapi.execute("PRAGMA synchronous = NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _cursor(conn: Connection) -> sqlite3.Cursor:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver.cursor()


class Store:
    """The checkpoint of one job.

    >>> store = Store.create(Path("jobs.db"), job_text, origin, base_dir)  # doctest: +SKIP
    >>> tasks = store.claim(level=1, limit=64)  # doctest: +SKIP
    >>> store.save([Children(t.node, 1, items, 1) for t in tasks], leaf_level=4)  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = _engine(path, immediate=True)
        self._reader = _engine(path, immediate=False)

    # -- opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, job_text: str, origin: str, base_dir: str) -> Store:
        """A new checkpoint holding ``job_text``; refuses a database that holds a job."""
        if not path.parent.is_dir():
            raise CheckpointError(f"{path}: folder {path.parent} does not exist")
        if path.exists() and path.stat().st_size > 0:
            store = cls._open_existing(path)
            if store._has_job():
                store.close()
                raise CheckpointError(
                    f"{path}: this database already holds a job; continue it with "
                    f"`resumer resume --db {path}` or choose another --db"
                )
        else:
            store = cls(path)
        store._migrate()
        with store._write() as cur:
            cur.execute(
                "INSERT INTO job (id, job_text, origin, base_dir, created_at)"
                " VALUES (1, ?, ?, ?, ?)",
                (job_text, origin, base_dir, time.time()),
            )
            cur.execute(
                "INSERT INTO nodes (id, parent_id, level, position, item_id, name, type,"
                " payload, status) VALUES (?, NULL, 0, 0, '', '', '', 'null', 'pending')",
                (SOURCE_NODE,),
            )
        return store

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True) -> Store:
        """An existing checkpoint; ``migrate=False`` for read-only commands."""
        if not path.is_file():
            raise CheckpointError(f"{path}: no such database (start a job with `resumer start`)")
        store = cls._open_existing(path)
        if migrate:
            store._migrate()
        else:
            store._check_revision()
        if not store._has_job():
            store.close()
            raise CheckpointError(f"{path}: this database holds no resumer job")
        return store

    @classmethod
    def _open_existing(cls, path: Path) -> Store:
        store = cls(path)
        try:
            with store._read() as cur:
                cur.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        except CheckpointError:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._writer.dispose()
        self._reader.dispose()

    def _has_job(self) -> bool:
        with self._read() as cur:
            tables = {
                r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "job" not in tables:
                if tables - {"alembic_version"}:
                    raise CheckpointError(f"{self.path}: not a resumer database")
                return False
            return bool(cur.execute("SELECT count(*) FROM job").fetchone()[0])

    def _alembic(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def _migrate(self) -> None:
        cfg = self._alembic()
        try:
            with self._writer.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except CommandError as error:
            raise CheckpointError(
                f"{self.path}: this checkpoint was written by a newer resumer ({error})"
            ) from error
        except exc.DBAPIError as error:
            raise _translate(self.path, error) from error

    def _check_revision(self) -> None:
        head = ScriptDirectory.from_config(self._alembic()).get_current_head()
        try:
            with self._reader.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except exc.DBAPIError as error:
            raise _translate(self.path, error) from error
        if current is not None and current != head:
            raise CheckpointError(
                f"{self.path}: the checkpoint's schema is {current}, this resumer expects "
                f"{head}; `resumer resume --db {self.path}` upgrades it"
            )

    # -- transactions --------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One IMMEDIATE transaction: commit on success, roll back on any exception."""
        try:
            with self._writer.begin() as conn:
                yield _cursor(conn)
        except exc.DBAPIError as error:
            raise _translate(self.path, error) from error
        except sqlite3.Error as error:
            raise CheckpointError(f"{self.path}: {error}") from error

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """One short read transaction (a snapshot), so WAL checkpoints are never starved."""
        try:
            with self._reader.begin() as conn:
                yield _cursor(conn)
        except exc.DBAPIError as error:
            raise _translate(self.path, error) from error
        except sqlite3.Error as error:
            raise CheckpointError(f"{self.path}: {error}") from error

    # -- the job -------------------------------------------------------------

    def job(self) -> JobRecord:
        with self._read() as cur:
            row = cur.execute(
                "SELECT job_text, origin, base_dir, created_at, started_at, finished_at,"
                " run_seconds FROM job WHERE id = 1"
            ).fetchone()
        return JobRecord(*row)

    def mark_started(self, now: float) -> None:
        with self._write() as cur:
            cur.execute("UPDATE job SET started_at = ?, finished_at = NULL WHERE id = 1", (now,))

    def mark_stopped(self, now: float, *, finished: bool) -> None:
        """Add this run's time to the job's; ``finished`` when no work is left."""
        with self._write() as cur:
            cur.execute(
                "UPDATE job SET run_seconds = run_seconds + max(0, ? - coalesce(started_at, ?)),"
                " finished_at = CASE WHEN ? THEN ? ELSE NULL END WHERE id = 1",
                (now, now, finished, now),
            )

    # -- work ----------------------------------------------------------------

    def reset_running(self) -> int:
        """Nodes a dead or stopped run left ``running`` go back to ``pending``."""
        with self._write() as cur:
            cur.execute("UPDATE nodes SET status = 'pending' WHERE status = 'running'")
            return cur.rowcount

    def claim(self, level: int, limit: int) -> list[Task]:
        """Mark up to ``limit`` pending nodes of ``level`` running; return them, oldest first."""
        with self._write() as cur:
            rows = cur.execute(
                "SELECT n.id, n.level, n.item_id, n.name, n.type, coalesce(p.item_id, '')"
                " FROM nodes AS n LEFT JOIN nodes AS p ON p.id = n.parent_id"
                " WHERE n.status = 'pending' AND n.level = ? ORDER BY n.id LIMIT ?",
                (level, limit),
            ).fetchall()
            cur.executemany(
                "UPDATE nodes SET status = 'running' WHERE id = ?", [(row[0],) for row in rows]
            )
        return [Task._make(row) for row in rows]

    def save(self, results: Sequence[Result], leaf_level: int) -> set[int]:
        """Store many results in one transaction; return the levels that gained pending nodes."""
        fed: set[int] = set()
        with self._write() as cur:
            for result in results:
                if isinstance(result, Children):
                    if self._save_children(cur, result, leaf_level):
                        fed.add(result.level + 1)
                elif isinstance(result, Failure):
                    cur.execute(
                        "UPDATE nodes SET status = 'failed', last_error = ?,"
                        " attempts = attempts + ? WHERE id = ? AND status = 'running'",
                        (result.error, result.attempts, result.node),
                    )
                elif isinstance(result, Release):
                    cur.execute(
                        "UPDATE nodes SET status = 'pending', attempts = attempts + ?"
                        " WHERE id = ? AND status = 'running'",
                        (result.attempts, result.node),
                    )
        return fed

    @staticmethod
    def _save_children(cur: sqlite3.Cursor, result: Children, leaf_level: int) -> bool:
        """Store one node's children; True if they are pending (to be queried)."""
        child_level = result.level + 1
        leaves = child_level >= leaf_level
        done = leaves or not result.items
        row = cur.execute(
            "UPDATE nodes SET status = ?, open_children = ?, attempts = attempts + ?"
            " WHERE id = ? AND status = 'running' RETURNING parent_id",
            (
                "complete" if done else "waiting",
                0 if done else len(result.items),
                result.attempts,
                result.node,
            ),
        ).fetchall()
        if not row:
            return False  # not running: a late or repeated result changes nothing
        child_status = "complete" if leaves else "pending"
        cur.executemany(
            "INSERT INTO nodes (parent_id, level, position, item_id, name, type, payload, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (result.node, child_level, position, *item, child_status)
                for position, item in enumerate(result.items)
            ],
        )
        if done:
            _complete_upward(cur, row[0][0])
        return not done

    # -- reads ---------------------------------------------------------------

    def counts(self) -> Counts:
        """Nodes per level (1..) and status; every status present, zeros included."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT level, status, count(*) FROM nodes WHERE level > 0 GROUP BY level, status"
            ).fetchall()
        counts: Counts = {}
        for level, status, n in rows:
            counts.setdefault(level, dict.fromkeys(STATUSES, 0))[status] = n
        return counts

    def source_status(self) -> str:
        """The status of the job's own node: ``complete`` once every level-1 tree is."""
        with self._read() as cur:
            row = cur.execute("SELECT status FROM nodes WHERE id = ?", (SOURCE_NODE,)).fetchone()
        return str(row[0])

    def source_error(self) -> str | None:
        with self._read() as cur:
            row = cur.execute(
                "SELECT last_error FROM nodes WHERE id = ?", (SOURCE_NODE,)
            ).fetchone()
        return None if row is None else row[0]

    def has_work(self) -> bool:
        """True while some node is pending or running (failed nodes are not work)."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT 1 FROM nodes WHERE status IN ('pending', 'running') LIMIT 1"
            ).fetchone()
        return row is not None

    def pending_levels(self) -> set[int]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT DISTINCT level FROM nodes WHERE status = 'pending'"
            ).fetchall()
        return {row[0] for row in rows}

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A read snapshot for walking the tree (export)."""
        with self._read() as cur:
            yield Reader(cur)


class Reader:
    """Walks the tree inside one read transaction."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def children(self, node: int, after: int = -1, limit: int = -1) -> list[NodeRow]:
        """A node's children in API order, from position ``after + 1``, at most ``limit``.

        The unique (parent, position) index makes this a range scan.
        """
        rows = self._cur.execute(
            "SELECT id, level, item_id, name, type, payload, status, last_error, position"
            " FROM nodes WHERE parent_id = ? AND position > ? ORDER BY position LIMIT ?",
            (node, after, limit),
        ).fetchall()
        return [NodeRow._make(row) for row in rows]


def _complete_upward(cur: sqlite3.Cursor, parent: int | None) -> None:
    """A child completed: count it off its parent, and complete each ancestor it finishes."""
    while parent is not None:
        row = cur.execute(
            "UPDATE nodes SET open_children = open_children - 1, status = CASE"
            " WHEN open_children = 1 AND status = 'waiting' THEN 'complete' ELSE status END"
            " WHERE id = ? RETURNING status, parent_id",
            (parent,),
        ).fetchall()
        if not row or row[0][0] != "complete":
            return
        parent = row[0][1]


def _translate(path: Path, error: exc.DBAPIError) -> CheckpointError:
    original = error.orig
    text = str(original) if original is not None else str(error)
    if "not a database" in text or "malformed" in text:
        return CheckpointError(f"{path}: not a resumer database, or damaged ({text})")
    if "locked" in text or "busy" in text:
        return CheckpointError(f"{path}: the database is locked by another program ({text})")
    return CheckpointError(f"{path}: {text}")


__all__ = ["Counts", "Item", "JobRecord", "NodeRow", "Reader", "Store"]
