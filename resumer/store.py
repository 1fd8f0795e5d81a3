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
  through an ``open_children`` counter (O(depth), not a scan);
- a file is read through a read-only connection until it is known to be a resumer
  checkpoint (``inspect``, ``check_new``): one that is refused is never changed.

This module makes no HTTP call and knows nothing of templates or threads.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

from resumer import crashpoints
from resumer.errors import CheckpointError, DamagedError, WriteError
from resumer.model import STATUSES, Children, Failure, Item, Release, Result, Task

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

# The newest Alembic revision this code knows; a test checks it is the head.
# Knowing it lets a checkpoint already at head open without importing Alembic.
SCHEMA_REVISION = "0007"
MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for SQLite's lock
SOURCE_NODE = 0  # the job's own row: its children are the level-1 nodes
SOURCE_CHUNK = 2048  # level-1 nodes read from the source and inserted at a time
MIGRATIONS_DIR = Path(str(importlib.resources.files("resumer.migrations")))

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


class Health(NamedTuple):
    """A running job's pace and policies' state, as ``status`` shows them."""

    breaker: str | None
    limit: int | None
    rate: float | None  # queries a second over the last minute
    new_retries: int  # retries since the last record (when read back: in all)
    send_rate: float | None = None  # calls a second the pacer allowed (None: no limit)
    send_rate_reason: str | None = None  # why it last changed


class FailedNode(NamedTuple):
    level: int
    id: str
    name: str
    type: str
    attempts: int
    error: str


Counts = dict[int, dict[str, int]]
Moves = Counter[tuple[int, str]]  # (level, status) -> nodes gained (negative: lost)


class Tally:
    """Live node counts per level and status: one scan at the start, then kept up to date
    from what each committed transaction moved (``Transaction.moves``).

    Why: counting the table is a scan (a third of a second at a million nodes); the
    live display, the metrics and the run's outcome ask for the counts often.

    >>> tally = Tally({1: dict.fromkeys(STATUSES, 0)})
    >>> tally.apply(Counter({(1, "pending"): 2}))
    >>> tally.counts()[1]["pending"]
    2
    """

    def __init__(self, counts: Counts) -> None:
        self._counts = {level: dict(by_status) for level, by_status in counts.items()}
        self._lock = threading.Lock()

    def apply(self, moves: Moves) -> None:
        with self._lock:
            for (level, status), n in moves.items():
                if level > 0 and n:
                    by_status = self._counts.setdefault(level, dict.fromkeys(STATUSES, 0))
                    by_status[status] += n

    def counts(self) -> Counts:
        """A copy, in the shape of ``Store.counts``."""
        with self._lock:
            return {level: dict(self._counts[level]) for level in sorted(self._counts)}


PriorityOf = Callable[[int, str, str, int], int]  # (level, id, type, parent's) -> priority


def inherit(level: int, item_id: str, item_type: str, parent_priority: int) -> int:
    """The default priority of a new node: its parent's."""
    return parent_priority


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection with our settings: we issue BEGIN ourselves (``isolation_level=None``),
    a long busy timeout, foreign keys; WAL and NORMAL sync unless read-only."""
    if read_only:
        conn = sqlite3.connect(_read_only_uri(path), uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class _Connections:
    """A few connections to one file, kept for reuse: opening one (and its PRAGMAs) per
    transaction costs more than the transaction. A connection is used by one thread at a
    time (taken, then given back), never concurrently, so sharing them is safe.

    Plain ``sqlite3``: SQLAlchemy (and Alembic) are imported only to migrate an older
    checkpoint, so a command that reads does not pay for importing them.
    """

    KEEP = 2  # idle connections kept; more are opened when every one is taken

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path, self.read_only = path, read_only
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def take(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _connect(self.path, read_only=self.read_only)

    def give(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            _roll_back(conn)
        with self._lock:
            if len(self._idle) < self.KEEP:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Store:
    """The checkpoint of one job.

    >>> store = Store.create(Path("jobs.db"), job_text, origin, base_dir)  # doctest: +SKIP
    >>> tasks = store.claim(level=1, limit=64)  # doctest: +SKIP
    >>> store.save([Children(t.node, 1, items, 1) for t in tasks], leaf_level=4)  # doctest: +SKIP
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise CheckpointError(
                f"resumer needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer (RETURNING);"
                f" this Python has {sqlite3.sqlite_version}"
            )
        self.path = path
        self._write_lock = threading.Lock()
        self._raw: sqlite3.Connection | None = None  # the writer's, kept for the store's life
        self._read_only = read_only
        self._connections = _Connections(path, read_only=read_only)
        self._scratch: Path | None = None  # a temporary folder of ours, removed at close

    # -- opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, job_text: str, origin: str, base_dir: str) -> Store:
        """A new checkpoint holding ``job_text``; refuses a database that holds a job, or
        any file that is not a checkpoint, leaving it as it was (``check_new``)."""
        check_new(path)
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
        """An existing checkpoint; ``migrate=False`` for read-only commands.

        The file is first read through a read-only connection (``inspect``): one that
        is not a resumer checkpoint is refused before anything could write to it.
        """
        inspect(path, write=migrate)
        # A file we cannot write to is read as it is: a read-write open would leave
        # -wal and -shm files beside it that it cannot remove.
        store = cls(path, read_only=not migrate and not _writable(path))
        try:
            if store._older():
                store = store._upgraded_in_place() if migrate else store._upgraded_copy()
            else:
                store._check_revision()
            if not store._has_job():
                raise CheckpointError(f"{path}: this database holds no resumer job")
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self._connections.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _tables(self) -> set[str]:
        with self._read() as cur:
            return {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _create_schema(self) -> None:
        """The head schema in an empty database, stamped as Alembic would."""
        with self._write() as cur:
            for statement in HEAD_SCHEMA:
                cur.execute(statement)
            cur.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (SCHEMA_REVISION,))

    def _has_job(self) -> bool:
        tables = self._tables()
        if "job" not in tables:
            if tables - {"alembic_version"}:
                raise CheckpointError(f"{self.path}: not a resumer database")
            return False
        with self._read() as cur:
            return bool(cur.execute("SELECT count(*) FROM job").fetchone()[0])

    def _alembic(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def revision(self) -> str | None:
        """The checkpoint's schema revision (None for an empty database)."""
        with self._read() as cur:
            has_table = cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            if not has_table:
                return None
            row = cur.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])

    def _migrate(self) -> None:
        revision = self.revision()
        if revision == SCHEMA_REVISION:
            return
        if revision is None and not self._tables():
            self._create_schema()
            return
        from alembic import command
        from alembic.util.exc import CommandError
        from sqlalchemy import exc

        cfg = self._alembic()
        engine = _migration_engine(self.path, read_only=self._read_only)
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except CommandError as error:
            raise CheckpointError(
                f"{self.path}: this checkpoint was written by a newer resumer ({error})"
            ) from error
        except exc.DBAPIError as error:
            original = error.orig
            if isinstance(original, sqlite3.Error):
                raise _translate_sqlite(self.path, original) from error
            raise _translate_text(self.path, str(original or error)) from error
        finally:
            engine.dispose()

    def _older(self) -> bool:
        """True if the checkpoint was written by an earlier resumer (an older schema)."""
        current = self.revision()
        return current is not None and current < SCHEMA_REVISION

    def _upgraded_in_place(self) -> Store:
        """Back the checkpoint up beside itself, then bring its schema up to date."""
        backup = self.path.with_name(f"{self.path.name}.before-{SCHEMA_REVISION}.bak")
        self.backup(backup)
        log.info(
            "%s: schema %s upgraded to %s (the old file is kept as %s)",
            self.path,
            self.revision(),
            SCHEMA_REVISION,
            backup,
        )
        self._migrate()
        return self

    def _upgraded_copy(self) -> Store:
        """For reading an older checkpoint without changing it: an upgraded copy in a
        temporary folder, removed when the store is closed."""
        folder = Path(tempfile.mkdtemp(prefix="resumer-read-"))
        copy = folder / self.path.name
        try:
            self.backup(copy)
        finally:
            self.close()
        upgraded = Store(copy)
        upgraded._scratch = folder
        upgraded._migrate()
        return upgraded

    def _check_revision(self) -> None:
        current = self.revision()
        if current is not None and current != SCHEMA_REVISION:
            raise CheckpointError(
                f"{self.path}: this checkpoint was written by a newer resumer (its schema is "
                f"{current}; this resumer knows up to {SCHEMA_REVISION}): upgrade resumer"
            )

    # -- transactions --------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One IMMEDIATE transaction: commit on success, roll back on any exception.

        Writes go through one connection kept for the store's life, serialised by
        a lock: SQLite has one writer anyway, and a pool checkout per transaction
        cost more than the small transactions of a fast crawl.
        """
        with self._write_lock:
            try:
                conn = self._write_connection()
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                    conn.commit()
                except BaseException:
                    _roll_back(conn)  # a failed COMMIT (a full disk) may leave it open
                    raise
            except sqlite3.Error as error:
                raise _translate_sqlite(self.path, error) from error

    def _write_connection(self) -> sqlite3.Connection:
        if self._raw is None:
            self._raw = self._connections.take()
            if (pages := crashpoints.max_pages()) is not None:  # a full disk, for tests
                self._raw.execute(f"PRAGMA max_page_count = {pages}")
        return self._raw

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """One short read transaction (a snapshot), so WAL checkpoints are never starved."""
        conn = self._connections.take()
        try:
            cur = conn.cursor()
            cur.execute("BEGIN")
            yield cur
            conn.commit()
        except sqlite3.Error as error:
            raise _translate_sqlite(self.path, error) from error
        finally:
            self._connections.give(conn)

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

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Many writes in one IMMEDIATE transaction (group commit); the counts per level
        and status move with them, in the same transaction."""
        with self._write() as cur:
            tx = Transaction(cur)
            yield tx
            tx.count_moves()

    def reset_running(self) -> int:
        """Nodes a dead or stopped run left ``running`` go back to ``pending``."""
        with self.transaction() as tx:
            return tx.reset_running()

    def claim(self, level: int, limit: int) -> list[Task]:
        """Claim up to ``limit`` pending nodes of ``level`` in a transaction of their own."""
        with self.transaction() as tx:
            return tx.claim(level, limit)

    def save(
        self, results: Sequence[Result], leaf_level: int, priority: PriorityOf = inherit
    ) -> set[int]:
        """Store results in a transaction of their own; see ``Transaction.save``."""
        with self.transaction() as tx:
            return tx.save(results, leaf_level, priority)

    # -- backup and integrity ------------------------------------------------

    def backup(self, dest: Path) -> None:
        """Copy the checkpoint to ``dest`` with SQLite's online backup (safe while a run
        writes): written beside ``dest`` and renamed, so ``dest`` is never half a copy."""
        partial = dest.with_name(f".{dest.name}.partial")
        try:
            target = sqlite3.connect(partial)
            try:
                with self._read() as cur:
                    cur.connection.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                target.close()
            os.replace(partial, dest)
        except (OSError, sqlite3.Error, CheckpointError) as error:
            partial.unlink(missing_ok=True)
            # The copy is written inside a read of the checkpoint, whose translation
            # would blame the checkpoint for the copy's full disk: say the cause itself.
            cause = error.__cause__ if isinstance(error, CheckpointError) else error
            raise CheckpointError(f"{dest}: backup failed ({cause or error})") from error

    def check(self) -> list[str]:
        """SQLite's integrity check plus the checkpoint's own invariants; what is wrong."""
        problems: list[str] = []
        with self._read() as cur:
            rows = [r[0] for r in cur.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                problems += [f"SQLite: {row}" for row in rows[:20]]
            for sql, what in _INVARIANTS:
                found = cur.execute(sql).fetchall()
                if found:
                    ids = ", ".join(str(row[0]) for row in found[:10])
                    more = " ..." if len(found) > 10 else ""
                    problems.append(f"{what}: node(s) {ids}{more}")
        kept, counted = self.counts(), self.counted()
        wrong = [
            f"level {level} {status} {kept.get(level, {}).get(status, 0)} (counted {n})"
            for level, by_status in counted.items()
            for status, n in by_status.items()
            if kept.get(level, {}).get(status, 0) != n
        ] + [f"level {level} (no such nodes)" for level in kept.keys() - counted.keys()]
        if wrong:
            problems.append(f"kept counts differ from the nodes: {', '.join(wrong[:10])}")
        return problems

    # -- reads ---------------------------------------------------------------

    def counts(self) -> Counts:
        """Nodes per level (1..) and status; every status present, zeros included. Read
        from the counts the writes keep (no scan: constant time whatever the tree)."""
        with self._read() as cur:
            return _counts(cur.execute("SELECT level, status, n FROM counts WHERE n != 0"))

    def counted(self) -> Counts:
        """``counts``, by counting the nodes themselves (a scan: for ``check``)."""
        with self._read() as cur:
            return _counts(
                cur.execute(
                    "SELECT level, status, count(*) FROM nodes WHERE level > 0"
                    " GROUP BY level, status"
                )
            )

    def alert_states(self) -> dict[str, str]:
        with self._read() as cur:
            row = cur.execute("SELECT alerts FROM job").fetchone()
        return dict(json.loads(row[0])) if row and row[0] else {}

    def health(self) -> Health:
        """How the job fared when a run last recorded it (``new_retries``: all so far)."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT breaker_state, concurrency_limit, rate, retries, send_rate,"
                " send_rate_reason FROM job"
            ).fetchone()
        return Health(*row) if row else Health(None, None, None, 0)

    def failed_nodes(self) -> Iterator[FailedNode]:
        """Every failed node, oldest first (the job's source included, as level 0)."""
        after = -1
        while True:
            with self._read() as cur:
                rows = cur.execute(
                    "SELECT id, level, item_id, name, type, attempts, coalesce(last_error, '')"
                    " FROM nodes WHERE status = 'failed' AND id > ? ORDER BY id LIMIT 500",
                    (after,),
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            for row in rows:
                yield FailedNode(*row[1:])

    def retry_failed(self) -> int:
        """Put failed nodes back to pending; their ancestors are still waiting for them."""
        with self.transaction() as tx:
            return tx.retry_failed()

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
            # Two EXISTS, so that each uses its partial index instead of a table scan.
            row = cur.execute(
                "SELECT EXISTS (SELECT 1 FROM nodes WHERE status = 'pending')"
                " OR EXISTS (SELECT 1 FROM nodes WHERE status = 'running')"
            ).fetchone()
        return bool(row[0])

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


class Transaction:
    """The write operations, all inside one open transaction (``Store.transaction``)."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur
        self.moves: Moves = Counter()  # what the writes changed in the counts

    def _moved(self, level: int, old: str, new: str, n: int = 1) -> None:
        self.moves[level, old] -= n
        self.moves[level, new] += n

    def set_alert_states(self, states: Mapping[str, str]) -> None:
        """Keep the alerts' states, so a resume does not fire again what already fired."""
        self._cur.execute("UPDATE job SET alerts = ? WHERE id = 1", (json.dumps(dict(states)),))

    def set_health(self, health: Health) -> None:
        """Record how the running job fares (for ``status`` in another terminal)."""
        self._cur.execute(
            "UPDATE job SET breaker_state = ?, concurrency_limit = ?, rate = ?,"
            " retries = retries + ?, health_at = ?, send_rate = ?, send_rate_reason = ?"
            " WHERE id = 1",
            (
                health.breaker,
                health.limit,
                health.rate,
                health.new_retries,
                time.time(),
                health.send_rate,
                health.send_rate_reason,
            ),
        )

    def count_moves(self) -> None:
        """Apply what this transaction moved to the kept counts (done at its end)."""
        changed = [
            (level, status, n) for (level, status), n in self.moves.items() if level > 0 and n
        ]
        if changed:
            self._cur.executemany(
                "INSERT INTO counts (level, status, n) VALUES (?, ?, ?)"
                " ON CONFLICT (level, status) DO UPDATE SET n = n + excluded.n",
                changed,
            )

    def retry_failed(self) -> int:
        rows = self._cur.execute(
            "UPDATE nodes SET status = 'pending', last_error = NULL WHERE status = 'failed'"
            " RETURNING level"
        ).fetchall()
        for (level,) in rows:
            self._moved(level, "failed", "pending")
        return len(rows)

    def reset_running(self) -> int:
        rows = self._cur.execute(
            "UPDATE nodes SET status = 'pending' WHERE status = 'running' RETURNING level"
        ).fetchall()
        for (level,) in rows:
            self._moved(level, "running", "pending")
        return len(rows)

    def claim(self, level: int, limit: int) -> list[Task]:
        """Mark up to ``limit`` pending nodes of ``level`` running; return them, highest
        priority first, then oldest."""
        rows = self._cur.execute(
            "SELECT n.id, n.level, n.item_id, n.name, n.type, coalesce(p.item_id, ''), n.attempts"
            " FROM nodes AS n LEFT JOIN nodes AS p ON p.id = n.parent_id"
            " WHERE n.status = 'pending' AND n.level = ? ORDER BY n.priority DESC, n.id LIMIT ?",
            (level, limit),
        ).fetchall()
        if rows:
            self._cur.execute(
                "UPDATE nodes SET status = 'running' WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([row[0] for row in rows]),),
            )
            self._moved(level, "pending", "running", len(rows))
        return [Task(*row) for row in rows]

    def save_source(
        self,
        node: int,
        items: Iterable[Item],
        attempts: int,
        leaf_level: int,
        priority: PriorityOf = inherit,
    ) -> int:
        """Store the level-1 nodes as the children of the job's own node; return how many.

        ``items`` is read SOURCE_CHUNK at a time, so a source file of a million
        roots never sits in memory whole; they are stored all or none, as any
        result. Applies only while the job's node is ``running``.
        """
        cur = self._cur
        row = cur.execute("SELECT status, priority FROM nodes WHERE id = ?", (node,)).fetchone()
        if row is None or row[0] != "running":
            return 0
        weight = row[1]
        now = time.time()
        leaves = leaf_level <= 1
        status, done_at = ("complete", now) if leaves else ("pending", None)
        weigh = None if priority is inherit else priority
        iterator, count = iter(items), 0
        while chunk := list(itertools.islice(iterator, SOURCE_CHUNK)):
            values: list[object] = []
            _child_values(values, node, 1, chunk, status, done_at, weight, weigh, first=count)
            _insert_children(cur, values)
            count += len(chunk)
        done = leaves or not count
        cur.execute(
            "UPDATE nodes SET status = ?, open_children = ?, attempts = attempts + ?,"
            " completed_at = ? WHERE id = ?",
            (
                "complete" if done else "waiting",
                0 if done else count,
                attempts,
                now if done else None,
                node,
            ),
        )
        self.moves[1, status] += count
        return count

    def save(
        self, results: Sequence[Result], leaf_level: int, priority: PriorityOf = inherit
    ) -> set[int]:
        """Store results; return the levels that gained pending nodes.

        ``priority(level, id, type, parent_priority)`` gives each new child its
        priority (by default, its parent's).

        A result applies only while its node is ``running``: a repeated or late
        one changes nothing. The statements are grouped for the whole batch (one
        UPDATE per kind of outcome, multi-row INSERTs for the children), so a
        commit of many results costs a handful of statements, not a few per node.
        """
        cur = self._cur
        outcomes: dict[tuple[str, int, int], dict[int, Children]] = {}
        for result in results:
            if isinstance(result, Children):
                done = result.level + 1 >= leaf_level or not result.items
                key = (
                    ("complete", 0, result.attempts)
                    if done
                    else ("waiting", len(result.items), result.attempts)
                )
                outcomes.setdefault(key, {})[result.node] = result
            elif isinstance(result, Failure):
                cur.execute(
                    "UPDATE nodes SET status = 'failed', last_error = ?,"
                    " attempts = attempts + ? WHERE id = ? AND status = 'running'",
                    (result.error, result.attempts, result.node),
                )
                self._moved(result.level, "running", "failed", cur.rowcount)
            elif isinstance(result, Release):
                cur.execute(
                    "UPDATE nodes SET status = 'pending', attempts = attempts + ?"
                    " WHERE id = ? AND status = 'running'",
                    (result.attempts, result.node),
                )
                self._moved(result.level, "running", "pending", cur.rowcount)
        fed: set[int] = set()
        completed: Counter[int] = Counter()  # parent -> children completed in this batch
        children: list[object] = []  # INSERT values, _COLUMNS per child
        now = time.time()
        weigh = None if priority is inherit else priority  # no call per child when unweighted
        moves = self.moves
        for (status, open_children, attempts), by_node in outcomes.items():
            marked = _mark_queried(cur, status, open_children, attempts, by_node, now)
            for node, parent, weight in marked:
                result = by_node[node]
                child_level = result.level + 1
                leaves = child_level >= leaf_level
                child_status, done_at = ("complete", now) if leaves else ("pending", None)
                moves[result.level, "running"] -= 1
                moves[result.level, status] += 1
                moves[child_level, child_status] += len(result.items)
                _child_values(
                    children, node, child_level, result.items, child_status, done_at, weight, weigh
                )
                if status == "complete":
                    if parent is not None:
                        completed[parent] += 1
                else:
                    fed.add(child_level)
        _insert_children(cur, children)
        _complete_upward(cur, completed, now, moves)
        return fed


def _child_values(
    out: list[object],
    node: int,
    level: int,
    items: Iterable[Item],
    status: str,
    done_at: float | None,
    weight: int,
    weigh: PriorityOf | None,
    first: int = 0,
) -> None:
    """Append the INSERT values of ``node``'s children (positions from ``first``) to ``out``.
    ``weigh``: the priority rule, or None when children take their parent's ``weight``."""
    for position, (item_id, name, kind, payload) in enumerate(items, start=first):
        out += (node, level, position, item_id, name, kind, payload, status)
        out += (weight if weigh is None else weigh(level, item_id, kind, weight), done_at)


def _mark_queried(
    cur: sqlite3.Cursor,
    status: str,
    open_children: int,
    attempts: int,
    by_node: dict[int, Children],
    now: float,
) -> list[tuple[int, int | None, int]]:
    """Set the status of the nodes still ``running``; return (node, parent, priority) of
    those."""
    # The ids go in as one JSON array: one statement shape whatever their number, so
    # SQLite's statement cache never fills with near-copies.
    return cur.execute(
        "UPDATE nodes SET status = ?, open_children = ?, attempts = attempts + ?,"
        " completed_at = CASE WHEN ? = 'complete' THEN ? END"
        " WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))"
        " RETURNING id, parent_id, priority",
        (status, open_children, attempts, status, now, json.dumps(list(by_node))),
    ).fetchall()


def _insert_children(cur: sqlite3.Cursor, values: list[object]) -> None:
    """Insert children, 8 values each, in multi-row statements: one statement step for
    many rows, not one per row."""
    start, left = 0, len(values) // _COLUMNS
    while left:
        # Powers of two only: a handful of statement shapes stay cached and reused.
        count = min(_BATCH_ROWS, 1 << (left.bit_length() - 1))
        cur.execute(_insert_sql(count), values[start * _COLUMNS : (start + count) * _COLUMNS])
        start += count
        left -= count


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


_COLUMNS = 10  # values per inserted child
_BATCH_ROWS = 256  # rows per INSERT at most (8 variables a row; SQLite allows 32,766)


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    """One multi-row INSERT statement for ``rows`` children."""
    values = ", ".join(["(" + ", ".join("?" * _COLUMNS) + ")"] * rows)
    return (
        "INSERT INTO nodes (parent_id, level, position, item_id, name, type, payload, status,"
        f" priority, completed_at) VALUES {values}"
    )


_INVARIANTS = (
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
)


def _counts(rows: Iterable[tuple[int, str, int]]) -> Counts:
    counts: Counts = {}
    for level, status, n in rows:
        counts.setdefault(level, dict.fromkeys(STATUSES, 0))[status] = n
    return counts


def _complete_upward(
    cur: sqlite3.Cursor, completed: Counter[int], now: float, moves: Moves
) -> None:
    """Count completed children off their parents (one statement per parent, not per
    child), and carry on upward with every parent that this completes."""
    while completed:
        above: Counter[int] = Counter()
        for parent, count in completed.items():
            row = cur.execute(
                "UPDATE nodes SET open_children = open_children - ?,"
                " completed_at = CASE WHEN open_children = ? AND status = 'waiting'"
                " THEN ? ELSE completed_at END,"
                " status = CASE WHEN open_children = ? AND status = 'waiting'"
                " THEN 'complete' ELSE status END"
                " WHERE id = ? RETURNING status, parent_id, level",
                (count, count, now, count, parent),
            ).fetchall()
            if row and row[0][0] == "complete":  # it was waiting for these last ones
                _, grandparent, level = row[0]
                moves[level, "waiting"] -= 1
                moves[level, "complete"] += 1
                if grandparent is not None:
                    above[grandparent] += 1
        completed = above


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
    _check_not_truncated(path)
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
        _check_not_truncated(path)
        if _read_only(path).job is not None:
            raise CheckpointError(
                f"{path}: this database already holds a job; continue it with "
                f"`resumer resume --db {path}` or choose another --db"
            )


def check_path(path: Path, *, write: bool, new: bool = False) -> None:
    """Refuse a database path that cannot be used, before anything is opened or created.

    ``new``: the file may be missing (it will be created). ``write``: the file and its
    folder must be writable (the lock file and SQLite's journal go beside it).
    """
    folder = path.parent
    folder_info = _stat(path, folder)
    if folder_info is None:
        raise CheckpointError(f"{path}: folder {folder} does not exist")
    if not stat.S_ISDIR(folder_info.st_mode):
        raise CheckpointError(f"{path}: {folder} is not a folder")
    info = _stat(path, path)
    if info is None and not new:
        raise CheckpointError(f"{path}: no such database (start a job with `resumer start`)")
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise CheckpointError(f"{path}: is a folder, not a database file")
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{path}: not a regular file, so not a database")
        if not os.access(path, os.R_OK):
            raise CheckpointError(f"{path}: not readable (permission denied)")
        if write and not os.access(path, os.W_OK):
            raise CheckpointError(f"{path}: not writable (permission denied)")
    if (write or info is None) and not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(
            f"{path}: folder {folder} is not writable (the lock file and SQLite's journal "
            "go beside the database)"
        )


def _stat(path: Path, target: Path) -> os.stat_result | None:
    try:
        return target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot use {target} ({error.strerror})") from error


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _read_only_uri(path: Path) -> str:
    """A URI opening ``path`` read-only, creating nothing beside it."""
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    if not any(path.with_name(path.name + end).exists() for end in ("-wal", "-journal")):
        # Nothing committed lives outside the file: read it as it is. A read-only open
        # of a WAL database would otherwise leave -wal and -shm files beside it.
        uri += "&immutable=1"
    return uri


def _read_only(path: Path) -> _Found:
    """The schema revision and the job of the database at ``path``, read through a
    read-only connection; a file that is not a resumer checkpoint is refused."""
    try:
        conn = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            return _inspection(path, conn)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise _translate_sqlite(path, error) from error


def _inspection(path: Path, conn: sqlite3.Connection) -> _Found:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = None if row is None else str(row[0])
    if revision is not None and revision > SCHEMA_REVISION:
        raise CheckpointError(
            f"{path}: this checkpoint was written by a newer resumer (its schema is "
            f"{revision}; this resumer knows up to {SCHEMA_REVISION}): upgrade resumer"
        )
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


def _check_not_truncated(path: Path) -> None:
    """Refuse a file shorter than its own header says (a copy cut short, a full disk)
    unless its WAL holds the rest."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror})") from error
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return  # not SQLite at all: the open that follows says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the in-header size is trustworthy
    if valid and pages and size < pages * page_size and not _whole_with_wal(path):
        raise DamagedError(
            f"{path}: the checkpoint is truncated ({size:,} bytes; its header says "
            f"{pages * page_size:,})"
        )


def _whole_with_wal(path: Path) -> bool:
    """True if SQLite reads ``path`` whole once its ``-wal`` file is counted.

    In WAL mode the main file may hold fewer pages than its header says while the
    committed ones are still in the WAL: a checkpoint that a full disk cut short writes
    page 1 and stops. Only SQLite knows which frames of the WAL count, so it decides:
    a read-only ``quick_check`` (which reads every page, the WAL's included) that says
    "ok". A page in neither file reads as zeros, which the check reports.
    """
    wal = path.with_name(path.name + "-wal")
    try:
        if wal.stat().st_size == 0:
            return False
    except OSError:
        return False
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll back whatever is open, never raising over the error that led here."""
    try:
        conn.rollback()
    except sqlite3.Error as error:
        log.debug("rollback failed: %s", error)


# SQLite's primary result codes for a write the device refused (extended codes keep
# these in their low byte): what was committed before is intact.
_WRITE_FAILURES = {
    13: "the disk is full",  # SQLITE_FULL
    8: "the file or its filesystem is read-only",  # SQLITE_READONLY
    10: "an I/O error",  # SQLITE_IOERR
}


def _migration_engine(path: Path, *, read_only: bool) -> Engine:
    """An engine for Alembic: its connections are ours (``_connect``), and its
    transactions begin IMMEDIATE, as every write here does."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        "sqlite://", creator=lambda: _connect(path, read_only=read_only), poolclass=NullPool
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _translate_sqlite(path: Path, error: sqlite3.Error) -> CheckpointError:
    code = getattr(error, "sqlite_errorcode", None)
    what = _WRITE_FAILURES.get(code & 0xFF) if isinstance(code, int) else None
    if what is not None:
        return WriteError(
            f"{path}: cannot write the checkpoint: {what} ({error}); nothing committed is"
            f" lost: once that is fixed, continue with: resumer resume --db {path}"
        )
    return _translate_text(path, str(error))


def _translate_text(path: Path, text: str) -> CheckpointError:
    if "malformed" in text:
        return DamagedError(f"{path}: the checkpoint is damaged ({text})")
    if "not a database" in text:
        return CheckpointError(f"{path}: not a resumer database, or damaged ({text})")
    if "locked" in text or "busy" in text:
        return CheckpointError(f"{path}: the database is locked by another program ({text})")
    return CheckpointError(f"{path}: {text}")


__all__ = [
    "Counts",
    "Item",
    "JobRecord",
    "NodeRow",
    "Reader",
    "Store",
    "Transaction",
    "check_new",
    "check_path",
    "inspect",
]
