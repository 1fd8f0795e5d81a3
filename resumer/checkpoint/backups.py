"""Backups of the checkpoint: where they go, what they are called, how many are kept.

Periodic backups run on a thread of their own (``PeriodicBackup``) so a copy of
a large checkpoint never holds up the crawl; SQLite's online backup reads a
consistent snapshot while the run keeps writing.

Tested by tests/integration/test_backup.py and tests/integration/test_disk_full.py.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from resumer.checkpoint.store import Store
from resumer.errors import DamagedError, ResumerError

log = logging.getLogger(__name__)


def folder_for(db: Path) -> Path:
    """Where periodic backups of ``db`` go: ``<db>.backups`` beside it."""
    return db.with_name(db.name + ".backups")


def backups_of(db: Path) -> list[Path]:
    """The periodic backups of ``db``, oldest first."""
    folder = folder_for(db)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{db.stem}-*.db"))


def last_backup_advice(db: Path) -> str:
    """One sentence naming the newest backup and how to resume from it."""
    found = backups_of(db)
    if not found:
        return f"no backup found in {folder_for(db)}"
    newest = found[-1]
    when = datetime.fromtimestamp(newest.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"the last backup is {newest} ({when}); resume from it with: resumer resume --db {newest}"
    )


def make_backup(store: Store, db: Path, keep: int) -> Path:
    """A timestamped backup in the backups folder; the oldest beyond ``keep`` are removed."""
    folder = folder_for(db)
    folder.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest = folder / f"{db.stem}-{stamp}.db"
    store.backup(dest)
    for old in backups_of(db)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return dest


class PeriodicBackup:
    """Backs the checkpoint up every ``every`` seconds while a run lasts.

    >>> with PeriodicBackup(store, db, every=600, keep=5):  # doctest: +SKIP
    ...     runner.run()
    """

    def __init__(self, store: Store, db: Path, every: float, keep: int) -> None:
        self.store = store
        self.db = db
        self.every = every
        self.keep = keep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="backup", daemon=True)

    def __enter__(self) -> PeriodicBackup:
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            began = time.monotonic()
            try:
                dest = make_backup(self.store, self.db, self.keep)
            except (ResumerError, OSError) as error:  # a failed backup must not stop the crawl
                why = error.strerror if isinstance(error, OSError) else error
                log.warning("backup failed, the crawl goes on: %s", why)
                continue
            log.info("backup written to %s in %.1fs", dest, time.monotonic() - began)


@contextlib.contextmanager
def naming_backups(db: Path) -> Iterator[None]:
    """A damaged checkpoint's message names the last backup to resume from."""
    try:
        yield
    except DamagedError as error:
        raise DamagedError(f"{error}; {last_backup_advice(db)}") from error
