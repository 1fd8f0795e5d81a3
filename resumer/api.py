"""The library's entry points: start, resume, status and export a job.

The CLI is a thin layer over these functions; they raise ``ResumerError``s
and print nothing. A run's progress display is the caller's (``progress``).

>>> outcome = start(Path("job.toml"), Path("jobs.db"))   # doctest: +SKIP
>>> outcome.exit_status                                    # doctest: +SKIP
0
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from resumer import lock, logs
from resumer.alerts import Alerts, Rules
from resumer.backups import PeriodicBackup, last_backup_advice
from resumer.client import Client, pool_for, read_source_file
from resumer.config import Job, load_job, parse_job
from resumer.errors import CheckpointError, ConfigError, DamagedError
from resumer.estimate import eta_seconds, remaining_queries
from resumer.exporter import (
    FORMATS,
    FlatNode,
    flat_nodes,
    output_file,
    write_export,
    write_rows,
)
from resumer.model import STATUSES, LiveFigures
from resumer.runner import Outcome, Policies, Runner, install_signal_handlers
from resumer.store import Counts, FailedNode, Store, check_new, inspect
from resumer.template import Template
from resumer.tls import ssl_context

if TYPE_CHECKING:
    from resumer.metrics import Metrics

log = logging.getLogger(__name__)

HealthProbe = Callable[[], LiveFigures]  # how the run fares now: for the live view
# Builds the progress display around a run, given a counts snapshot, the leaf level and
# the run's health (breaker state, in-flight limit, send rate).
ProgressFactory = Callable[[Callable[[], Counts], int, HealthProbe], AbstractContextManager[Any]]


def _no_progress(
    _snapshot: Callable[[], Counts], _leaf: int, _health: HealthProbe
) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def start(
    job_file: Path | Job,
    db: Path,
    *,
    progress: ProgressFactory = _no_progress,
    handle_signals: bool = False,
    metrics_port: int | None = None,
) -> Outcome:
    """Create the checkpoint for ``job_file`` (a path, or a ``Job``) in ``db``; run the job.

    ``metrics_port`` overrides the job file's ``[metrics] port``.

    Everything the job file needs is checked before the database is created,
    so a refused job file leaves no database behind.
    """
    job = job_file if isinstance(job_file, Job) else load_job(job_file)
    job.environment()
    ssl_context(job.request.tls, origin=job.origin, warn=False)  # a bad PEM file: refused now
    if job.source.file is not None:
        _check_source_file(job.source.file)
        for _ in read_source_file(job.source.file, job.response):
            pass  # a bad source file is refused now, not mid-run
    with _naming_backups(db):
        check_new(db)  # before the lock file: a refused database leaves nothing beside it
    with lock.JobLock(db), _naming_backups(db):
        store = Store.create(db, job.text, job.origin, str(job.base_dir))
        try:
            log.info("job %s: started in %s", job.origin, db)
            return _run(job, store, progress, handle_signals, metrics_port)
        finally:
            store.close()


def resume(
    db: Path,
    *,
    progress: ProgressFactory = _no_progress,
    handle_signals: bool = False,
    retry_failed: bool = False,
    metrics_port: int | None = None,
) -> Outcome:
    """Continue the job stored in ``db`` from its checkpoint.

    ``retry_failed`` first puts failed nodes back to pending.
    """
    with _naming_backups(db):
        record = inspect(db, write=True)  # read-only: a refused file is left as it was
    # A job that cannot run is refused before the lock file, or an upgrade, is written.
    parse_job(record.text, record.origin, Path(record.base_dir)).environment()
    with lock.JobLock(db), _naming_backups(db):
        store = Store.open(db)
        try:
            job = stored_job(store)
            job.environment()
            if retry_failed:
                count = store.retry_failed()
                log.info("%d failed node(s) are pending again", count)
            log.info("job %s: resumed from %s", job.origin, db)
            return _run(job, store, progress, handle_signals, metrics_port)
        finally:
            store.close()


def stored_job(store: Store, *, lenient: bool = False) -> Job:
    """The job stored in ``store``; ``lenient`` to read one that an earlier resumer
    accepted (checks added since are not applied: ``config.parse_job``)."""
    record = store.job()
    return parse_job(record.text, record.origin, Path(record.base_dir), lenient=lenient)


def _check_source_file(path: Path) -> None:
    """A source file is read twice (checked now, loaded by the run): a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: reading it says so
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path}: is a folder, not a source file (source.file)")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: not a regular file (source.file is read more than once)")


def _run(
    job: Job,
    store: Store,
    progress: ProgressFactory,
    handle_signals: bool,
    metrics_port: int | None,
) -> Outcome:
    env = job.environment()
    logs.protect(job.secrets(env))  # the ${VAR} values, and a password in request.proxy
    logs.set_job(Path(job.origin).name)
    with pool_for(job, env) as http:
        policies = Policies(job)
        client = Client(job, env, http, policies.gate)
        alerts = _alerts(job, store, policies, env)
        runner = Runner(job, store, client, policies, alerts=alerts)
        metrics = _metrics(job, runner, policies, metrics_port)
        if metrics is not None:
            runner.on_results = metrics.observe_results
        if handle_signals:
            install_signal_handlers(runner)
        began = time.monotonic()
        try:
            with (
                PeriodicBackup(store, store.path, job.backup.every, job.backup.keep),
                progress(runner.counts, job.crawl.max_depth, runner.live_figures),
            ):
                outcome = runner.run()
        finally:
            if metrics is not None:
                metrics.close()
            if alerts is not None:
                alerts.close()
    log.info(
        "job %s: %s after %.1fs; %d queries stored, %d failed node(s)",
        job.origin,
        "stopped" if outcome.stopped else ("complete" if outcome.complete else "finished"),
        time.monotonic() - began,
        outcome.queries,
        outcome.failed,
    )
    return outcome


def _alerts(job: Job, store: Store, policies: Policies, env: Mapping[str, str]) -> Alerts | None:
    """The job's alert rules, if it has any, picking up the states an earlier run left."""
    settings = job.alerts
    rules = Rules(
        settings.error_rate,
        settings.window,
        settings.breaker_open,
        settings.stall,
        settings.failed_nodes,
    )
    if not rules.any:
        return None
    webhook = Template.compile(settings.webhook).bind_env(env).render({}) or None
    alerts = Alerts(rules, job=Path(job.origin).name, states=store.alert_states(), webhook=webhook)
    policies.gate.observers.append(alerts.observe_call)
    return alerts


def _metrics(job: Job, runner: Runner, policies: Policies, port: int | None) -> Metrics | None:
    """The run's Prometheus metrics, served if a port is set (the option, or the job's)."""
    port = job.metrics.port if port is None else port
    if not port:
        return None
    from resumer.metrics import Metrics

    metrics = Metrics(
        counts=runner.counts,
        in_flight=lambda: policies.limiter.in_flight,
        limit=lambda: policies.limiter.limit,
        breaker=lambda: policies.breaker.state,
        send_rate=lambda: policies.pacer.rate,
        progress=runner.live_figures,
    )
    try:
        metrics.serve(port, job.metrics.host)
    except OSError as error:
        raise ConfigError(
            f"metrics: cannot listen on {job.metrics.host}:{port} ({error.strerror})"
        ) from error
    policies.gate.observers.append(metrics.observe_call)
    return metrics


@contextlib.contextmanager
def _naming_backups(db: Path) -> Iterator[None]:
    """A damaged checkpoint's message names the last backup to resume from."""
    try:
        yield
    except DamagedError as error:
        raise DamagedError(f"{error}; {last_backup_advice(db)}") from error


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
    with _naming_backups(db):
        store = Store.open(db, migrate=False)
    try:
        yield store
    finally:
        store.close()


def status(db: Path) -> dict[str, Any]:
    """The job's state and counts (the contracted ``status --json`` keys first), then its
    timings, pace, retries, the policies' state and an estimate of the time left."""
    with opened(db) as store:
        job = stored_job(store, lenient=True)
        counts = store.counts()
        record = store.job()
        source = store.source_status()
        has_work = store.has_work()
        health = store.health()
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
        row = dict(counts.get(level, dict.fromkeys(STATUSES, 0)))
        row["total"] = sum(row.values())
        levels[str(level)] = row
    totals = {key: sum(row[key] for row in levels.values()) for key in (*STATUSES, "total")}
    elapsed = record.run_seconds
    running = state == "running"
    if running and record.started_at:
        elapsed += max(0.0, time.time() - record.started_at)
    remaining = remaining_queries(counts, job.crawl.max_depth)
    rate = health.rate if running else None
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
    }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value)


def failed(db: Path) -> Iterator[FailedNode]:
    """The failed nodes of ``db``'s job, oldest first (level 0 is the job's source list)."""
    with opened(db) as store:
        yield from store.failed_nodes()


def nodes(db: Path, *, partial: bool = False, level: int | None = None) -> Iterator[FlatNode]:
    """The exported nodes of ``db``, one at a time, depth-first in API order (constant
    memory): ``level, id, name, type, parent_id, path, payload`` (the payload's JSON text)."""
    with opened(db) as store:
        yield from flat_nodes(store, partial=partial, level=level)


def export(
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
    """``export`` into the file at ``path``, never left half-written: the export goes to
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
