"""One process per job: an advisory ``flock`` on ``<db>.lock`` holding the owner's pid.

The kernel drops the lock when its process dies, even by ``kill -9``, so a
stale lock can never block a resume; the pid inside is only for messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from resumer.errors import CheckpointError, JobLockedError

_TRIES = 5
_PAUSE = 0.02  # seconds between tries


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


class JobLock:
    """Exclusive ownership of a job database while a run lasts.

    >>> with JobLock(Path("/tmp/x.db")):  # doctest: +SKIP
    ...     run()
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = lock_path(db)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
        except OSError as error:
            raise CheckpointError(
                f"{self.db}: cannot create its lock file {self.path} ({error.strerror})"
            ) from error
        if not _try_flock(fd):
            os.close(fd)
            pid = _read_pid(self.path)
            who = f"process {pid}" if pid else "another process"
            raise JobLockedError(
                f"{self.db}: this job is being run by {who}; "
                "wait for it to finish or stop it (Ctrl-C) first",
                pid,
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as error:  # not a regular file, a full disk
            os.close(fd)
            raise CheckpointError(
                f"{self.db}: cannot write its lock file {self.path} ({error.strerror})"
            ) from error
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(db: Path) -> int | None:
    """The pid of the live process running the job in ``db``, or None if none is."""
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO there must not block
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(path) or -1
    finally:
        os.close(fd)
    return None


def _try_flock(fd: int) -> bool:
    # `holder()` takes a shared lock for an instant; a few tries ride over it.
    for attempt in range(_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _TRIES:
                time.sleep(_PAUSE)
    return False


def _read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return int(os.read(fd, 32).decode().strip())
        finally:
            os.close(fd)
    return None
