"""resumer: crawl a tree of records behind an HTTP API, concurrently, politely and durably.

The Python API (the CLI is built on it)::

    from pathlib import Path
    from resumer import diff, job_from_dict, load_job, run, resume, export, status

    job = load_job("job.toml")               # or job_from_dict({"source": {...}, ...})
    outcome = run(job, Path("features.db"))  # resume(Path("features.db")) after a stop
    for node in export(Path("features.db")):
        print(node.level, node.path, node.payload["name"])
    print(status(Path("features.db")).state)
    for change in diff(Path("monday.db"), Path("tuesday.db")):   # two crawls compared
        print(change.change, change.path, change.fields)

The names below are the whole public API (``__all__``; a test holds it to what the
package really exports). They load the read side only: a run imports httpx and the
rest when it starts. The package is laid out by concept, imports running one way
(``tests/unit/test_layout.py`` holds them to it)::

    cli/         the commands (typer, rich): parse, call ``api``, print
    api.py       the library's entry points, which the names below are
    crawler/     a crawl: coordinator, worker threads, signals, probe, estimates
    results.py   what a run and the read side hand back: Node, JobStatus, Outcome
    query/       one node's query: request, pages, what an answer means, mapping
    http/        the connection pool, deadlines, TLS, auth, rate-limit headers
    ops/         logs, metrics, alerts, dashboards
    job/         the job file: settings, keys, loading, templates, the bound job
    policies/    retry, breaker, pacer, concurrency limit, the gate
    checkpoint/  SQLite: the store, transactions, tables and migrations, export
    fake/        the fake API (demo, tests, benchmarks)
    errors.py, model.py   the error tree; the plain data every layer shares
"""

from __future__ import annotations

from resumer.api import diff, export, resume, run, status
from resumer.errors import ResumerError
from resumer.job.loader import job_from_dict, load_job
from resumer.job.settings import Job
from resumer.results import Change, JobStatus, Node, Outcome

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Job",
    "JobStatus",
    "Node",
    "Outcome",
    "ResumerError",
    "__version__",
    "diff",
    "export",
    "job_from_dict",
    "load_job",
    "resume",
    "run",
    "status",
]
