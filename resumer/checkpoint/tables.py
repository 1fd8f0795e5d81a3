"""The checkpoint's schema: its revision, the statements that create it, the Alembic
migrations that bring an older one up to date, and telling whether a file holds it.

Owns: ``SCHEMA_REVISION`` and ``HEAD_SCHEMA`` (a new checkpoint is created from them
without importing Alembic), ``upgrade`` (Alembic, imported only then; its transaction
begins IMMEDIATE, as every write does), and the vetting of a file before anything
writes to it (``inspect``, ``check_new``): it is read through a read-only connection,
and one that is refused is never changed.

It must not read or write the crawl's rows (that is ``resumer.checkpoint.store`` and
``resumer.checkpoint.transaction``), nor keep a connection: each function is given a cursor or
opens and closes its own.
"""

from __future__ import annotations

import importlib.resources
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from resumer.checkpoint.sqlitefile import (
    check_not_truncated,
    check_path,
    connect,
    read_only_uri,
    translate_sqlite,
    translate_text,
)
from resumer.errors import CheckpointError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

# The newest Alembic revision this code knows; a test checks it is the head.
# Knowing it lets a checkpoint already at head open without importing Alembic.
SCHEMA_REVISION = "0010"
MIGRATIONS_DIR = Path(str(importlib.resources.files("resumer.checkpoint.migrations")))

# The schema the migrations build, as SQLite records it: a new checkpoint is created
# from it in one transaction, then stamped with SCHEMA_REVISION, so that starting a
# job does not import Alembic (a third of a second). A test checks that these
# statements and the migrations give the same schema.
HEAD_SCHEMA = (
    """CREATE TABLE alembic_version (
        version_num VARCHAR(32) NOT NULL,
        CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))""",
    """CREATE TABLE job (
        id INTEGER NOT NULL,
        job_text TEXT NOT NULL,
        origin TEXT NOT NULL,
        base_dir TEXT NOT NULL,
        created_at FLOAT NOT NULL,
        started_at FLOAT,
        finished_at FLOAT,
        run_seconds FLOAT DEFAULT '0' NOT NULL,
        breaker_state TEXT,
        concurrency_limit INTEGER,
        health_at FLOAT,
        rate FLOAT,
        retries INTEGER DEFAULT '0' NOT NULL,
        alerts TEXT,
        send_rate FLOAT,
        send_rate_reason TEXT,
        paused_until FLOAT,
        resume_after FLOAT,
        PRIMARY KEY (id),
        CONSTRAINT one_job CHECK (id = 1))""",
    """CREATE TABLE nodes (
        id INTEGER NOT NULL,
        parent_id INTEGER,
        level INTEGER NOT NULL,
        position INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        open_children INTEGER DEFAULT '0' NOT NULL,
        attempts INTEGER DEFAULT '0' NOT NULL,
        last_error TEXT,
        priority INTEGER DEFAULT '0' NOT NULL,
        completed_at FLOAT,
        leaf_rule INTEGER,
        PRIMARY KEY (id),
        CONSTRAINT uq_nodes_parent_position UNIQUE (parent_id, position),
        CONSTRAINT ck_nodes_status
            CHECK (status IN ('pending', 'running', 'waiting', 'complete', 'failed')),
        FOREIGN KEY(parent_id) REFERENCES nodes (id))""",
    "CREATE INDEX ix_nodes_running ON nodes (id) WHERE status = 'running'",
    "CREATE INDEX ix_nodes_pending ON nodes (level, priority DESC, id) WHERE status = 'pending'",
    """CREATE TABLE counts (
        level INTEGER NOT NULL,
        status TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (level, status))""",
    # Read-only: the crawl a node a row, for sqlite3 and SQL tools (README: "The tree view").
    """CREATE VIEW tree (level, id, name, type, parent_id, path, status, payload) AS
    WITH RECURSIVE walk (node, level, id, name, type, parent_id, path, status, payload) AS (
        SELECT id, level, item_id, name, type, NULL, json_array(item_id), status, payload
        FROM nodes WHERE parent_id = 0
        UNION ALL
        SELECT c.id, c.level, c.item_id, c.name, c.type, walk.id,
            json_insert(walk.path, '$[#]', c.item_id), c.status, c.payload
        FROM nodes AS c JOIN walk ON c.parent_id = walk.node
    )
    SELECT level, id, name, type, parent_id, path, status, payload FROM walk""",
)


@dataclass(frozen=True, slots=True)
class JobRecord:
    text: str
    origin: str
    base_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    run_seconds: float


# The checkpoint's own invariants, each a query that finds the nodes breaking it (at most
# 11: ten to show, one to say there are more), and what it means.
INVARIANTS = (
    (
        "SELECT n.id FROM nodes AS n WHERE n.status IN ('waiting', 'complete') AND n.open_children"
        " != (SELECT count(*) FROM nodes AS c WHERE c.parent_id = n.id AND c.status != 'complete')"
        " LIMIT 11",
        "open-children counter differs from the children not complete",
    ),
    (
        "SELECT n.id FROM nodes AS n WHERE n.status = 'complete' AND EXISTS"
        " (SELECT 1 FROM nodes AS c WHERE c.parent_id = n.id AND c.status != 'complete') LIMIT 11",
        "complete node with a child not complete",
    ),
    (
        "SELECT n.id FROM nodes AS n WHERE n.status IN ('pending', 'running', 'failed') AND EXISTS"
        " (SELECT 1 FROM nodes AS c WHERE c.parent_id = n.id) LIMIT 11",
        "node not yet queried that has children",
    ),
    (
        "SELECT n.id FROM nodes AS n WHERE n.leaf_rule IS NOT NULL AND (n.status != 'complete'"
        " OR EXISTS (SELECT 1 FROM nodes AS c WHERE c.parent_id = n.id)) LIMIT 11",
        "leaf by rule not complete, or with children",
    ),
)


def create_schema(cur: sqlite3.Cursor) -> None:
    """The head schema in an empty database, stamped as Alembic would."""
    for statement in HEAD_SCHEMA:
        cur.execute(statement)
    cur.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (SCHEMA_REVISION,))


def revision(cur: sqlite3.Cursor) -> str | None:
    """The database's schema revision (None for an empty database)."""
    has_table = cur.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if not has_table:
        return None
    row = cur.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def check_revision(path: Path, current: str | None) -> None:
    """Refuse a checkpoint a newer resumer wrote."""
    if current is not None and current > SCHEMA_REVISION:
        raise CheckpointError(
            f"{path}: this checkpoint was written by a newer resumer (its schema is "
            f"{current}; this resumer knows up to {SCHEMA_REVISION}): upgrade resumer"
        )


def upgrade(path: Path, *, read_only: bool) -> None:
    """Bring the checkpoint at ``path`` to the head revision with Alembic's migrations,
    in one IMMEDIATE transaction."""
    from alembic import command
    from alembic.util.exc import CommandError
    from sqlalchemy import exc

    cfg = _alembic()
    engine = _migration_engine(path, read_only=read_only)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except CommandError as error:
        raise CheckpointError(
            f"{path}: this checkpoint was written by a newer resumer ({error})"
        ) from error
    except exc.DBAPIError as error:
        original = error.orig
        if isinstance(original, sqlite3.Error):
            raise translate_sqlite(path, original) from error
        raise translate_text(path, str(original or error)) from error
    finally:
        engine.dispose()


def _alembic() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _migration_engine(path: Path, *, read_only: bool) -> Engine:
    """An engine for Alembic: its connections are ours (``connect``), and its
    transactions begin IMMEDIATE, as every write here does."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        "sqlite://", creator=lambda: connect(path, read_only=read_only), poolclass=NullPool
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


CHECKPOINT_TABLES = frozenset({"alembic_version", "job", "nodes", "counts"})


class _Found(NamedTuple):
    """What a database file holds, read without changing a byte of it."""

    revision: str | None  # the schema revision; None: no schema yet
    job: JobRecord | None  # None: no job stored


def inspect(path: Path, *, write: bool) -> JobRecord:
    """The job stored at ``path``; a file that is not a resumer checkpoint holding a job
    (or one a newer resumer wrote) is refused, changing nothing.

    ``write``: the caller will write to it (its folder and the file must be writable).
    A refused file is left byte for byte as it was, and no ``-wal``, ``-shm`` or lock
    file is created beside it: it is read through a read-only connection.
    """
    check_path(path, write=write)
    check_not_truncated(path)
    found = _read_only(path)
    if found.job is None:
        raise CheckpointError(f"{path}: this database holds no resumer job")
    return found.job


def check_new(path: Path) -> None:
    """Refuse ``path`` for a new checkpoint, as ``Store.create`` would, changing nothing:
    a path that cannot be written, a file that is not a checkpoint, or one holding a job.
    A missing file, an empty one or an empty checkpoint is fine."""
    check_path(path, write=True, new=True)
    if path.exists() and path.stat().st_size > 0:
        check_not_truncated(path)
        if _read_only(path).job is not None:
            raise CheckpointError(
                f"{path}: this database already holds a job; continue it with "
                f"`resumer resume --db {path}` or choose another --db"
            )


def _read_only(path: Path) -> _Found:
    """The schema revision and the job of the database at ``path``, read through a
    read-only connection; a file that is not a resumer checkpoint is refused."""
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            return _inspection(path, conn)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise translate_sqlite(path, error) from error


def _inspection(path: Path, conn: sqlite3.Connection) -> _Found:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = None if row is None else str(row[0])
    check_revision(path, revision)
    foreign = sorted(tables - CHECKPOINT_TABLES)
    if foreign or ("job" in tables) != ("nodes" in tables) or (tables and revision is None):
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        what = f" (it has table(s) {shown})" if foreign else ""
        raise CheckpointError(f"{path}: not a resumer database{what}")
    if "job" not in tables:
        return _Found(revision, None)
    try:
        row = conn.execute(
            "SELECT job_text, origin, base_dir, created_at, started_at, finished_at,"
            " run_seconds FROM job WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError as error:  # a table named job, but not ours
        raise CheckpointError(f"{path}: not a resumer database ({error})") from error
    return _Found(revision, None if row is None else JobRecord(*row))
