"""resumer: crawl a tree of records behind an HTTP API, concurrently, politely and durably.

The Python API (the CLI is built on it)::

    from pathlib import Path
    from resumer import job_from_dict, load_job, run, resume, export, status

    job = load_job("job.toml")               # or job_from_dict({"source": {...}, ...})
    outcome = run(job, Path("features.db"))  # resume(Path("features.db")) after a stop
    for node in export(Path("features.db")):
        print(node.level, node.path, node.payload["name"])
    print(status(Path("features.db")).state)

Names are imported on first use, so ``import resumer`` stays cheap; for type
checkers they are the real, typed functions and classes (the package ships
``py.typed``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what the lazy names below resolve to, for mypy and editors
    from resumer.api import nodes as export
    from resumer.api import resume, status
    from resumer.api import start as run
    from resumer.errors import ResumerError
    from resumer.jobfile import job_from_dict, load_job
    from resumer.reports import JobStatus, Node, Outcome
    from resumer.settings import Job

_EXPORTS = {
    "Job": ("resumer.settings", "Job"),
    "load_job": ("resumer.jobfile", "load_job"),
    "job_from_dict": ("resumer.jobfile", "job_from_dict"),
    "run": ("resumer.api", "start"),
    "resume": ("resumer.api", "resume"),
    "export": ("resumer.api", "nodes"),
    "status": ("resumer.api", "status"),
    "Node": ("resumer.reports", "Node"),
    "JobStatus": ("resumer.reports", "JobStatus"),
    "Outcome": ("resumer.reports", "Outcome"),
    "ResumerError": ("resumer.errors", "ResumerError"),
}
__all__ = [
    "Job",
    "JobStatus",
    "Node",
    "Outcome",
    "ResumerError",
    "__version__",
    "export",
    "job_from_dict",
    "load_job",
    "resume",
    "run",
    "status",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'resumer' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(import_module(module), attribute)
