"""The checkpoint of one job: the ``Store``, the one owner of the database.

Owns: opening a checkpoint (creating, vetting, upgrading it), the one transaction
helper (``transaction``: IMMEDIATE, commit, roll back on any exception), the named
writes run in a transaction of their own (``claim``, ``save``, ``reset_running``,
``retry_failed``, the job's times), backup and integrity checks, and the read side
(counts, health, failed nodes, walking the tree in short read transactions).

The database is owned by this module and its helpers only: ``resumer.checkpoint.sqlitefile``
(connections, vetting a path, sqlite3's errors), ``resumer.checkpoint.tables`` (the schema and
its migrations) and ``resumer.checkpoint.transaction`` (the hot-path writes). No SQL anywhere
else; no connection or cursor leaves them.

Invariants kept here:

- every write transaction begins IMMEDIATE (a deferred one that reads then writes
  fails at once with SQLITE_BUSY in WAL mode), writes are serialised on one
  connection, reads are short snapshots (so WAL checkpoints are never starved);
- a file is read through a read-only connection until it is known to be a resumer
  checkpoint (``inspect``, ``check_new``): one that is refused is never changed;
- a result is applied only while its node is ``running`` (``Transaction``).

This module makes no HTTP call and knows nothing of templates or threads.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from resumer import _crashpoints
from resumer.checkpoint.files import whole_or_nothing
from resumer.checkpoint.sqlitefile import (
    MIN_SQLITE,
    Connections,
    roll_back,
    translate_sqlite,
    writable,
)
from resumer.checkpoint.tables import (
    INVARIANTS,
    SCHEMA_REVISION,
    JobRecord,
    check_new,
    check_revision,
    create_schema,
    inspect,
    revision,
    upgrade,
)
from resumer.checkpoint.tally import Counts, Tally, gather
from resumer.checkpoint.transaction import Health, PriorityOf, Transaction, inherit
from resumer.errors import CheckpointError
from resumer.model import Result, Task

log = logging.getLogger(__name__)

SOURCE_NODE = 0  # the job's own row: its children are the level-1 nodes


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


class FailedNode(NamedTuple):
    level: int
    id: str
    name: str
    type: str
    attempts: int
    error: str


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
        self._connections = Connections(path, read_only=read_only)
        self._scratch: Path | None = None  # a temporary folder of ours, removed at close
        # The live counts: read from the kept ones when opened, then moved by every
        # transaction that commits (``transaction``), so no one counts the table.
        self._tally = Tally({})

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
        store = cls(path, read_only=not migrate and not writable(path))
        try:
            if store._older():
                store = store._upgraded_in_place() if migrate else store._upgraded_copy()
            else:
                check_revision(path, store.revision())
            if not store._has_job():
                raise CheckpointError(f"{path}: this database holds no resumer job")
            store._tally = Tally(store.counts())
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

    def _has_job(self) -> bool:
        tables = self._tables()
        if "job" not in tables:
            if tables - {"alembic_version"}:
                raise CheckpointError(f"{self.path}: not a resumer database")
            return False
        with self._read() as cur:
            return bool(cur.execute("SELECT count(*) FROM job").fetchone()[0])

    def revision(self) -> str | None:
        """The checkpoint's schema revision (None for an empty database)."""
        with self._read() as cur:
            return revision(cur)

    def _migrate(self) -> None:
        current = self.revision()
        if current == SCHEMA_REVISION:
            return
        if current is None and not self._tables():
            with self._write() as cur:
                create_schema(cur)
            return
        upgrade(self.path, read_only=self._read_only)

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

    # -- transactions --------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One IMMEDIATE transaction: commit on success, roll back on any exception.

        Writes go through one connection kept for the store's life, serialised by
        a lock: SQLite has one writer anyway, and a pool checkout per transaction
        cost more than the small transactions of a fast crawl.
        """
        with self._write_lock, self._begun() as cur:
            yield cur

    @contextmanager
    def _begun(self) -> Iterator[sqlite3.Cursor]:
        """``_write`` without its lock, which the caller holds."""
        try:
            conn = self._write_connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                conn.commit()
            except BaseException:
                roll_back(conn)  # a failed COMMIT (a full disk) may leave it open
                raise
        except sqlite3.Error as error:
            raise translate_sqlite(self.path, error) from error

    def _write_connection(self) -> sqlite3.Connection:
        if self._raw is None:
            self._raw = self._connections.take()
            if (pages := _crashpoints.max_pages()) is not None:  # a full disk, for tests
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
            raise translate_sqlite(self.path, error) from error
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
            cur.execute(
                "UPDATE job SET started_at = ?, finished_at = NULL, resume_after = NULL,"
                " paused_until = NULL WHERE id = 1",
                (now,),
            )

    def resume_after(self) -> float | None:
        """When the API said the job may go on (Unix time), if a run stopped for a wait
        past ``[rate] max_pause``; None otherwise."""
        with self._read() as cur:
            row = cur.execute("SELECT resume_after FROM job WHERE id = 1").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_resume_after(self, when: float) -> None:
        """Keep the time the API named (Unix time): ``status`` and ``resume`` read it."""
        with self._write() as cur:
            cur.execute(
                "UPDATE job SET resume_after = ?, paused_until = NULL WHERE id = 1", (when,)
            )

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
        and status move with them, in the same transaction, and the live counts
        (``live_counts``) once it has committed."""
        with self._write_lock:
            with self._begun() as cur:
                tx = Transaction(cur)
                yield tx
                tx.count_moves()
            # Still under the lock: the live counts take the commits in their order,
            # so a reader never sees a node leave a status before it entered it.
            self._tally.apply(tx.moves)

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
        try:
            with whole_or_nothing(dest) as partial:
                target = sqlite3.connect(partial)
                try:
                    with self._read() as cur:
                        cur.connection.backup(target)
                    target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                finally:
                    target.close()
        except (OSError, sqlite3.Error, CheckpointError) as error:
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
            for sql, what in INVARIANTS:
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
            if status != "dropped" and kept.get(level, {}).get(status, 0) != n
        ] + [
            f"level {level} (no such nodes)"
            for level in kept.keys() - counted.keys()
            if any(n for status, n in kept[level].items() if status != "dropped")
        ]
        if wrong:
            problems.append(f"kept counts differ from the nodes: {', '.join(wrong[:10])}")
        return problems

    # -- reads ---------------------------------------------------------------

    def live_counts(self) -> Counts:
        """``counts`` as this store's own commits left them, without reading the database:
        cheap, and safe from any thread (the live display, the metrics). Another process
        writing the same checkpoint is not seen: ``counts`` reads it."""
        return self._tally.counts()

    def counts(self) -> Counts:
        """Nodes per level (1..) and status; every status present, zeros included. Read
        from the counts the writes keep (no scan: constant time whatever the tree)."""
        with self._read() as cur:
            return gather(cur.execute("SELECT level, status, n FROM counts WHERE n != 0"))

    def counted(self) -> Counts:
        """``counts``, by counting the nodes themselves (a scan: for ``check``); the
        items dropped are not nodes, so not counted (0)."""
        with self._read() as cur:
            return gather(
                cur.execute(
                    "SELECT level, status, count(*) FROM nodes WHERE level > 0"
                    " GROUP BY level, status"
                    " UNION ALL SELECT level, 'leaf_by_rule', count(*) FROM nodes"
                    " WHERE leaf_rule IS NOT NULL GROUP BY level"
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
                " send_rate_reason, paused_until FROM job"
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

    def children_of(self, nodes: Sequence[int]) -> dict[int, list[NodeRow]]:
        """The children of each of ``nodes`` (siblings, as a rule) in API order, in one
        statement: a walk asks once per family, not once per node."""
        found: dict[int, list[NodeRow]] = {}
        rows = self._cur.execute(
            "SELECT parent_id, id, level, item_id, name, type, payload, status, last_error,"
            " position FROM nodes WHERE parent_id IN (SELECT value FROM json_each(?))"
            " ORDER BY parent_id, position",
            (json.dumps(list(nodes)),),
        )
        for parent, *row in rows:
            found.setdefault(parent, []).append(NodeRow._make(row))
        return found

    def node(self, node: int) -> NodeRow:
        """One node by its row."""
        row = self._cur.execute(
            "SELECT id, level, item_id, name, type, payload, status, last_error, position"
            " FROM nodes WHERE id = ?",
            (node,),
        ).fetchone()
        return NodeRow._make(row)

    def repeated_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` more than one node holds (one scan of the table)."""
        rows = self._cur.execute(
            "SELECT item_id FROM nodes WHERE level > 0 AND item_id IN"
            " (SELECT value FROM json_each(?)) GROUP BY item_id HAVING count(*) > 1",
            (json.dumps(list(ids)),),
        )
        return {row[0] for row in rows}


__all__ = [
    "FailedNode",
    "NodeRow",
    "Reader",
    "Store",
]
