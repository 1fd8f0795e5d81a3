"""The library's entry points: run, resume, status and export a job, and compare two
crawls (``resumer`` exports these under the same names).

The CLI is a thin layer over these functions; they raise ``ResumerError``s
and print nothing. A run's progress display is the caller's (``progress``).

>>> outcome = run(Path("job.toml"), Path("jobs.db"))     # doctest: +SKIP
>>> outcome.exit_status                                    # doctest: +SKIP
0

Tested by tests/integration/test_python_api.py, tests/integration/test_runner.py,
tests/integration/test_export_formats.py and tests/integration/test_status.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from resumer.checkpoint import lock
from resumer.checkpoint.backups import naming_backups
from resumer.checkpoint.diff import Diff
from resumer.checkpoint.export import (
    FORMATS,
    flat_nodes,
    output_file,
    write_export,
    write_rows,
)
from resumer.checkpoint.store import FailedNode, Store
from resumer.crawler.estimate import eta_seconds, remaining_queries
from resumer.errors import CheckpointError, ConfigError
from resumer.job.keys import DOTTED_PATH
from resumer.job.loader import stored_job
from resumer.job.settings import Job
from resumer.model import SHAPED, STATUSES
from resumer.results import (
    Change,
    JobStatus,
    Node,
    Outcome,
    ProgressFactory,
    iso_utc,
    no_progress,
)

log = logging.getLogger(__name__)


def run(
    job_file: Path | Job,
    db: Path,
    *,
    progress: ProgressFactory = no_progress,
    handle_signals: bool = False,
    metrics_port: int | None = None,
) -> Outcome:
    """Create the checkpoint for ``job_file`` (a path, or a ``Job``) in ``db``; run the job.

    ``metrics_port`` overrides the job file's ``[metrics] port``. Everything the
    job file needs is checked before the database is created, so a refused job
    file leaves no database behind.
    """
    from resumer.crawler import crawl  # the run side: only a run loads httpx and the rest

    return crawl.start(
        job_file, db, progress=progress, handle_signals=handle_signals, metrics_port=metrics_port
    )


def resume(
    db: Path,
    *,
    progress: ProgressFactory = no_progress,
    handle_signals: bool = False,
    retry_failed: bool = False,
    metrics_port: int | None = None,
) -> Outcome:
    """Continue the job stored in ``db`` from its checkpoint.

    ``retry_failed`` first puts failed nodes back to pending. A job with nothing left to
    query (complete, or finished with failed nodes) is not run: its ``Outcome`` says so
    (``already_finished``), and the checkpoint is left as it was.
    """
    if not retry_failed and (finished := _already_finished(db)) is not None:
        return finished
    early, wait = _resume_after(db)
    if early is not None:
        return early
    from resumer.crawler import crawl

    return crawl.resume(
        db,
        progress=progress,
        handle_signals=handle_signals,
        retry_failed=retry_failed,
        metrics_port=metrics_port,
        wait=wait,
    )


def _resume_after(db: Path) -> tuple[Outcome | None, float]:
    """Before the time the API named (a run stopped for a wait past ``[rate] max_pause``):
    the outcome to give without running when more than ``max_pause`` is left, else the
    seconds every call must still wait (0: none)."""
    with opened(db) as store:
        after = store.resume_after()
        max_pause = stored_job(store.job(), lenient=True).rate.max_pause
    left = 0.0 if after is None else after - time.time()
    if left <= 0:
        return None, 0.0
    if left > max_pause:
        outcome = Outcome(stopped=True, complete=False, failed=0, queries=0, resume_after=after)
        return outcome, left
    return None, left


def _already_finished(db: Path) -> Outcome | None:
    """The outcome of a job with nothing left to query; None if it has work (or runs)."""
    info = status(db)
    if info.state not in ("complete", "failed"):
        return None
    complete = info.state == "complete"
    failed = 0 if complete else info.failed
    return Outcome(
        stopped=False, complete=complete, failed=failed, queries=0, already_finished=True
    )


def backup(db: Path, dest: Path) -> None:
    """An online copy of ``db`` at ``dest``, safe while a run writes to ``db``."""
    problem = output_problem(dest, db)
    if problem is None and dest.exists() and not dest.is_file():
        problem = "not a regular file (a backup replaces it)"
    if problem:
        raise CheckpointError(f"{dest}: {problem}")
    with opened(db) as store:
        store.backup(dest)


def output_problem(path: Path, db: Path) -> str | None:
    """What stops a file made from ``db`` being written at ``path`` (completing
    "<path>: ..."), or None."""
    folder = path.parent
    try:
        if path.exists() and db.exists() and path.samefile(db):
            return "cannot overwrite the database it is made from"
        if path.is_dir():
            return "is a folder; name a file in it"
        if not folder.exists():
            return f"folder {folder} does not exist"
        if not folder.is_dir():
            return f"{folder} is not a folder"
        if path.is_file() and not os.access(path, os.W_OK):
            return "not writable (permission denied)"
        if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
            return f"folder {folder} is not writable"
    except OSError as error:  # a parent that cannot be searched, a name too long
        return f"cannot be written ({error.strerror})"
    return None


def check(db: Path) -> list[str]:
    """What is wrong with ``db`` (SQLite's integrity check and the checkpoint's invariants)."""
    with opened(db) as store:
        return store.check()


@contextlib.contextmanager
def opened(db: Path) -> Iterator[Store]:
    """A checkpoint opened for reading (no migration, no lock)."""
    with naming_backups(db):
        store = Store.open(db, migrate=False)
    try:
        yield store
    finally:
        store.close()


def status(db: Path) -> JobStatus:
    """The job's state and counts, timings, pace, retries, the policies' state and an
    estimate of the time left: the data of ``status --json`` (``.as_json()`` gives it)."""
    return JobStatus.from_json(_status_document(db))


def _status_document(db: Path) -> dict[str, Any]:
    """The ``status --json`` document (the contracted keys first)."""
    with opened(db) as store:
        job = stored_job(store.job(), lenient=True)
        counts = store.counts()
        record = store.job()
        source = store.source_status()
        has_work = store.has_work()
        health = store.health()
        resume_after = store.resume_after()
        source_error = store.source_error() if source == "failed" else None
    pid = lock.holder(db)
    if pid is not None:
        state = "running"
    elif source == "complete":
        state = "complete"
    elif has_work:
        state = "stopped"
    else:
        state = "failed"
    levels = {}
    for level in range(1, job.crawl.max_depth + 1):
        by_status = counts.get(level, {})
        row = {status: by_status.get(status, 0) for status in STATUSES}
        row["total"] = sum(row.values())
        row.update({figure: by_status.get(figure, 0) for figure in SHAPED})
        levels[str(level)] = row
    keys = (*STATUSES, "total", *SHAPED)
    totals = {key: sum(row[key] for row in levels.values()) for key in keys}
    elapsed = record.run_seconds
    running = state == "running"
    if running and record.started_at:
        elapsed += max(0.0, time.time() - record.started_at)
    remaining = remaining_queries(counts, job.crawl.max_depth)
    rate = health.rate if running else None
    paused = health.paused_until
    if paused is not None and paused <= time.time():
        paused = None  # the wait is over
    return {
        "state": state,
        "levels": levels,
        "totals": totals,
        "started_at": _iso(record.created_at),
        "finished_at": _iso(record.finished_at) if not running else None,
        "elapsed_seconds": round(elapsed, 1),
        "queries_per_second": round(rate, 1) if rate is not None else None,
        "remaining_queries_estimate": round(remaining),
        "eta_seconds_estimate": _rounded(eta_seconds(remaining, rate)) if running else None,
        "retries": health.new_retries,
        "failed": totals["failed"] + (1 if source_error else 0),
        "breaker": health.breaker if running else None,
        "concurrency_limit": health.limit if running else None,
        "send_rate": _rounded(health.send_rate) if running else None,
        "send_rate_reason": health.send_rate_reason if running else None,
        "pid": pid if pid and pid > 0 else None,
        "source_error": source_error,
        "paused_until": iso_utc(paused) if running and paused is not None else None,
        "resume_after": iso_utc(resume_after) if resume_after and not running else None,
    }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value)


def job_in(db: Path) -> Job:
    """The job a checkpoint holds, as written (its ``${VAR}``s are read when it runs): to
    crawl it again into a new checkpoint, ``run(job_in(old), new)``."""
    with opened(db) as store:
        return stored_job(store.job())


class Comparison(NamedTuple):
    """Two checkpoints being compared (``comparing``): the changes to stream, and what
    the caller should say first (a running crawl, different job files)."""

    diff: Diff
    notes: list[str]


def diff(
    old: Path,
    new: Path,
    *,
    level: int | None = None,
    ignore: Iterable[str] = (),
    partial: bool = False,
) -> Iterator[Change]:
    """What changed from the crawl in ``old`` to the one in ``new``, streamed.

    ``ignore``: payload fields left out of the comparison, as ``"payload.updatedAt"``;
    ``level``: only the changes of that level's nodes; ``partial``: compare crawls that
    are not finished (otherwise a ``ConfigError``).
    """
    with comparing(old, new, level=level, ignore=ignore, partial=partial) as compared:
        for difference in compared.diff.changes():
            yield Change.of(difference)


@contextlib.contextmanager
def comparing(
    old: Path,
    new: Path,
    *,
    level: int | None = None,
    ignore: Iterable[str] = (),
    partial: bool = False,
) -> Iterator[Comparison]:
    """Both checkpoints opened for reading and checked (``diff`` and ``resumer diff``)."""
    paths = [_ignored(path) for path in ignore]
    if level is not None and level < 1:
        raise ConfigError(f"level: expected a level from 1, got {level}")
    with opened(old) as before, opened(new) as after:
        notes = []
        for db, store in ((old, before), (new, after)):
            pid = lock.holder(db)
            if pid is not None:
                notes.append(
                    f"{db}: a crawl is running (process {pid}): comparing what it has committed"
                )
            if not partial:
                _check_finished(db, store)
        if before.job().text != after.job().text:
            notes.append(f"{old} and {new} hold different job files: compared anyway")
        yield Comparison(Diff(before, after, ignore=paths, level=level, partial=partial), notes)


def _ignored(path: str) -> str:
    """An ``ignore`` path as the diff takes it: the part inside the payload."""
    inside = path.removeprefix("payload.")
    if inside == path or not DOTTED_PATH.match(inside):
        raise ConfigError(
            f"ignore {path!r}: expected a dotted path inside the payload, such as"
            ' "payload.updatedAt"'
        )
    return inside


def _check_finished(db: Path, store: Store) -> None:
    """A crawl not finished (nodes left to query, or failed) is compared only when asked."""
    totals = Counter[str]()
    for by_status in store.counts().values():
        totals.update({status: by_status.get(status, 0) for status in STATUSES})
    left = [f"{totals[s]:,} {s}" for s in ("pending", "running", "failed") if totals[s]]
    if left or store.source_status() != "complete":
        what = ", ".join(left) or "its level-1 list is not loaded"
        raise ConfigError(
            f"{db}: the crawl is not complete ({what}); compare what is there with --partial"
        )


def failed(db: Path) -> Iterator[FailedNode]:
    """The failed nodes of ``db``'s job, oldest first (level 0 is the job's source list)."""
    with opened(db) as store:
        yield from store.failed_nodes()


def export(db: Path, *, partial: bool = False, level: int | None = None) -> Iterator[Node]:
    """The exported nodes of ``db``, one at a time, depth-first in API order (constant
    memory); each payload as a Python object.

    >>> for node in export(Path("features.db"), level=2):   # doctest: +SKIP
    ...     print(node.path, node.payload["name"])
    """
    with opened(db) as store:
        for row in flat_nodes(store, partial=partial, level=level):
            yield Node.of(row)


def export_to(
    db: Path,
    out: TextIO,
    *,
    partial: bool = False,
    fmt: str = "json",
    level: int | None = None,
) -> int:
    """Write the export of ``db`` to ``out`` as ``json`` (nested; returns the level-1
    trees written), ``jsonl`` or ``csv`` (a node a row; returns the rows, one ``level``
    only if given). A failed write (a full disk, a closed pipe) is a ``ConfigError``."""
    _check_format(fmt, level)
    with opened(db) as store:
        try:
            written = _write(store, out, partial, fmt, level)
            out.flush()
        except OSError as error:
            name = getattr(out, "name", "the output")
            raise ConfigError(f"{name}: cannot write the export ({error.strerror})") from error
    return written


def export_file(
    db: Path,
    path: Path,
    *,
    partial: bool = False,
    fmt: str = "json",
    level: int | None = None,
) -> int:
    """``export_to`` the file at ``path``, never left half-written: the export goes to
    a temporary file beside it, renamed over it once whole (a device such as /dev/null,
    or a pipe, is written directly). Nothing is created when ``db`` or ``path`` is
    refused; a failed write leaves no file behind."""
    _check_format(fmt, level)
    problem = output_problem(path, db)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    with opened(db) as store, output_file(path) as out:
        return _write(store, out, partial, fmt, level)


def _check_format(fmt: str, level: int | None) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json" and level is not None:
        raise ConfigError("--level: keeps one level of a jsonl or csv export, not of json")


def _write(store: Store, out: TextIO, partial: bool, fmt: str, level: int | None) -> int:
    if fmt == "json":
        return write_export(store, out, partial=partial)
    return write_rows(store, out, fmt, partial=partial, level=level)
