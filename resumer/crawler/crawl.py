"""Running a job: start and resume, with the client, policies, runner, metrics and alerts.

``api.run`` and ``api.resume`` call into here, importing it only then: this
is the side of the library that needs httpx, tenacity and prometheus_client,
so the read-only commands (``status``, ``export``, ``failed``) never load them.

Tested by tests/integration/test_runner.py, tests/integration/test_python_api.py,
tests/integration/test_crash.py and tests/integration/test_resilience.py.
"""

from __future__ import annotations

import logging
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from resumer.checkpoint import lock
from resumer.checkpoint.backups import PeriodicBackup, naming_backups
from resumer.checkpoint.store import Store
from resumer.checkpoint.tables import check_new, inspect
from resumer.crawler.policyset import Policies
from resumer.crawler.runner import Runner
from resumer.crawler.signals import install_signal_handlers
from resumer.errors import ConfigError
from resumer.http.pool import pool_for
from resumer.http.tls import ssl_context
from resumer.job.bound import BoundJob, bind
from resumer.job.loader import load_job, stored_job
from resumer.job.settings import Job
from resumer.ops import logs
from resumer.ops.alerts import Alerts, Rules
from resumer.query.client import Client
from resumer.query.sources import read_source_file
from resumer.results import Outcome, ProgressFactory, no_progress

if TYPE_CHECKING:
    from resumer.ops.metrics import Metrics

log = logging.getLogger(__name__)


def start(
    job_file: Path | Job,
    db: Path,
    *,
    progress: ProgressFactory = no_progress,
    handle_signals: bool = False,
    metrics_port: int | None = None,
) -> Outcome:
    """Create the checkpoint for ``job_file`` (a path, or a ``Job``) in ``db``; run the job.

    ``metrics_port`` overrides the job file's ``[metrics] port``.

    Everything the job file needs is checked before the database is created,
    so a refused job file leaves no database behind.
    """
    job = job_file if isinstance(job_file, Job) else load_job(job_file)
    bound = bind(job)
    ssl_context(job.request.tls, origin=job.origin, warn=False)  # a bad PEM file: refused now
    if job.source.file is not None:
        _check_source_file(job.source.file)
        for _ in read_source_file(job.source.file, job.response):
            pass  # a bad source file is refused now, not mid-run
    with naming_backups(db):
        check_new(db)  # before the lock file: a refused database leaves nothing beside it
    with lock.JobLock(db), naming_backups(db):
        store = Store.create(db, job.text, job.origin, str(job.base_dir))
        try:
            log.info("job %s: started in %s", job.origin, db)
            return _run(bound, store, progress, handle_signals, metrics_port)
        finally:
            store.close()


def resume(
    db: Path,
    *,
    progress: ProgressFactory = no_progress,
    handle_signals: bool = False,
    retry_failed: bool = False,
    metrics_port: int | None = None,
    wait: float = 0.0,
) -> Outcome:
    """Continue the job stored in ``db`` from its checkpoint.

    ``retry_failed`` first puts failed nodes back to pending; ``wait``: seconds every
    call waits first (the time the API named is not reached yet).
    """
    with naming_backups(db):
        record = inspect(db, write=True)  # read-only: a refused file is left as it was
    # A job that cannot run is refused before the lock file, or an upgrade, is written.
    bind(stored_job(record))
    with lock.JobLock(db), naming_backups(db):
        store = Store.open(db)
        try:
            bound = bind(stored_job(store.job()))
            job = bound.job
            if retry_failed:
                count = store.retry_failed()
                log.info("%d failed node(s) are pending again", count)
            log.info("job %s: resumed from %s", job.origin, db)
            return _run(bound, store, progress, handle_signals, metrics_port, wait)
        finally:
            store.close()


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
    bound: BoundJob,
    store: Store,
    progress: ProgressFactory,
    handle_signals: bool,
    metrics_port: int | None,
    wait: float = 0.0,
) -> Outcome:
    job = bound.job
    logs.protect(bound.secrets)  # the ${VAR} values, and a password in request.proxy
    logs.set_job(Path(job.origin).name)
    with pool_for(bound) as http:
        policies = Policies(job)
        if wait > 0:
            policies.pacer.wait_until(wait, "the time the API named is not reached yet")
        client = Client(bound, http, policies.gate)
        alerts = _alerts(bound, store, policies)
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


def _alerts(bound: BoundJob, store: Store, policies: Policies) -> Alerts | None:
    """The job's alert rules, if it has any, picking up the states an earlier run left."""
    job = bound.job
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
    alerts = Alerts(
        rules, job=Path(job.origin).name, states=store.alert_states(), webhook=bound.webhook
    )
    policies.gate.observers.append(alerts.observe_call)
    return alerts


def _metrics(job: Job, runner: Runner, policies: Policies, port: int | None) -> Metrics | None:
    """The run's Prometheus metrics, served if a port is set (the option, or the job's)."""
    port = job.metrics.port if port is None else port
    if not port:
        return None
    from resumer.ops.metrics import Metrics

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
