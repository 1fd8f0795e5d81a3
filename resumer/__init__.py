"""resumer: crawl a tree of records behind an HTTP API, concurrently, politely and durably.

The Python API (the CLI is built on it)::

    from pathlib import Path
    from resumer import job_from_dict, load_job, run, resume, export

    job = load_job("job.toml")               # or job_from_dict({"source": {...}, ...})
    outcome = run(job, Path("features.db"))  # resume(Path("features.db")) after a stop
    for node in export(Path("features.db")):
        print(node.level, node.path, node.name)

Names are imported on first use, so ``import resumer`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Job": ("resumer.config", "Job"),
    "load_job": ("resumer.config", "load_job"),
    "job_from_dict": ("resumer.config", "job_from_dict"),
    "run": ("resumer.api", "start"),
    "resume": ("resumer.api", "resume"),
    "export": ("resumer.api", "nodes"),
    "status": ("resumer.api", "status"),
    "Outcome": ("resumer.runner", "Outcome"),
    "ResumerError": ("resumer.errors", "ResumerError"),
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'resumer' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(import_module(module), attribute)
