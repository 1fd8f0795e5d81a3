"""A SQLite file and its connections, before and below resumer's tables.

Owns: opening connections with our settings (``connect``: WAL, ``synchronous=NORMAL``,
foreign keys, a long busy timeout, BEGIN issued by us), the small pool that reuses them
(``Connections``), refusing a path or a truncated file before anything opens it
(``check_path``, ``check_not_truncated``), and sqlite3's errors as ours
(``translate_sqlite``: a full disk is a ``WriteError``, a damaged file a ``DamagedError``).

It knows nothing of resumer's tables and runs no statement on them: the schema is
``resumer.checkpoint.tables``'s, the reads and writes ``resumer.checkpoint.store``'s and
``resumer.checkpoint.transaction``'s. Plain ``sqlite3``: nothing here imports SQLAlchemy.

Tested by tests/integration/test_bad_input.py, tests/integration/test_disk_full.py and
tests/integration/test_backup.py.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from pathlib import Path
from urllib.parse import quote

from resumer.errors import CheckpointError, DamagedError, WriteError

log = logging.getLogger(__name__)

MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for SQLite's lock


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection with our settings: we issue BEGIN ourselves (``isolation_level=None``),
    a long busy timeout, foreign keys; WAL and NORMAL sync unless read-only."""
    if read_only:
        conn = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class Connections:
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
        return connect(self.path, read_only=self.read_only)

    def give(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            roll_back(conn)
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


def writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def read_only_uri(path: Path) -> str:
    """A URI opening ``path`` read-only, creating nothing beside it."""
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    if not any(path.with_name(path.name + end).exists() for end in ("-wal", "-journal")):
        # Nothing committed lives outside the file: read it as it is. A read-only open
        # of a WAL database would otherwise leave -wal and -shm files beside it.
        uri += "&immutable=1"
    return uri


def check_not_truncated(path: Path) -> None:
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


def roll_back(conn: sqlite3.Connection) -> None:
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


def translate_sqlite(path: Path, error: sqlite3.Error) -> CheckpointError:
    code = getattr(error, "sqlite_errorcode", None)
    what = _WRITE_FAILURES.get(code & 0xFF) if isinstance(code, int) else None
    if what is not None:
        return WriteError(
            f"{path}: cannot write the checkpoint: {what} ({error}); nothing committed is"
            f" lost: once that is fixed, continue with: resumer resume --db {path}"
        )
    return translate_text(path, str(error))


def translate_text(path: Path, text: str) -> CheckpointError:
    if "malformed" in text:
        return DamagedError(f"{path}: the checkpoint is damaged ({text})")
    if "not a database" in text:
        return CheckpointError(f"{path}: not a resumer database, or damaged ({text})")
    if "locked" in text or "busy" in text:
        return CheckpointError(f"{path}: the database is locked by another program ({text})")
    return CheckpointError(f"{path}: {text}")
