"""The one exception hierarchy of resumer.

Every error a user can cause or meet is one of these; the CLI maps each class
to a message and an exit status in one place (``cli.py``)::

    ResumerError
    ├── ConfigError        the job file (or its source file) is wrong        → exit 2
    ├── CheckpointError    the database is missing, foreign, damaged or busy → exit 2
    │   ├── JobLockedError another live process is running this job          → exit 2
    │   └── DamagedError   the file is corrupt or truncated                   → exit 2
    └── QueryError         one query failed; ``transient`` says if a retry may help

Foreign exceptions (tomllib, sqlite3, httpx) are translated at the boundary
with ``raise ... from exc`` so callers only ever see these types.
"""

from __future__ import annotations


class ResumerError(Exception):
    """Base of every error resumer raises on purpose."""


class ConfigError(ResumerError):
    """The job file is invalid: the message names the file, the key and what was expected."""


class CheckpointError(ResumerError):
    """The checkpoint database cannot be used: missing, not a resumer job, or too new."""


class JobLockedError(CheckpointError):
    """Another live process holds the job; ``pid`` names it."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class DamagedError(CheckpointError):
    """The checkpoint file is corrupt or truncated; the message names the last backup."""


class QueryError(ResumerError):
    """One query (or the source load) failed.

    ``transient`` errors (network failures, HTTP 5xx) may succeed when retried;
    the others (HTTP 4xx, a malformed body) fail the node at once. ``throttled``
    ones (429, a 503 from a server shedding load) are the server pacing us: a
    node that runs out of attempts on them waits for later instead of failing.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did
        self.throttled = throttled  # "too many" (429, a 503 shedding load), not "broken"

    def __repr__(self) -> str:
        kind = "transient" if self.transient else "permanent"
        return f"<QueryError {kind} {self}>"
