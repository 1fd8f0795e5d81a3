"""The one exception hierarchy of resumer.

Every error a user can cause or meet is one of these; the CLI maps each class
to a message and an exit status in one place (``cli/app.py``). Classes defined in
another module are named with it; the others live here::

    ResumerError
    ├── ConfigError        the job file (or its source file) is wrong        → exit 2
    ├── CheckpointError    the database is missing, foreign, damaged or busy → exit 2
    │   ├── JobLockedError another live process is running this job          → exit 2
    │   ├── DamagedError   the file is corrupt or truncated                   → exit 2
    │   └── WriteError     a write failed: disk full, read-only, I/O error    → exit 2
    ├── QueryError         one query failed; ``transient`` says if a retry may help
    │   └── BodyTooLarge   an answer past request.max_body: its query fails for good
    ├── AuthError          a 401, or no token: the run stops, nothing failed  → exit 2
    │   ├── TlsError       a certificate refused (theirs or ours): the same   → exit 2
    │   ├── ProxyAuthError the proxy refused its credentials: the same        → exit 2
    │   └── StopError      an answer a rule says stops the run: the same      → exit 2
    ├── MappingError       (query/mapping.py) a body lacks the [response] shape: its QueryError
    ├── TemplateError      a template string is malformed: job/loader.py: a ConfigError
    ├── Stopped            a stop came while a query waited: the node goes back to pending
    ├── Throttled          a throttled query handed back: the node is parked, its worker goes on
    ├── UnstorablePage     a page not read again to be stored: its node fails, the rest stored
    └── RunError           the run could not go on (an internal error)        → exit 1

Foreign exceptions (tomllib, sqlite3, httpx) are translated at the boundary
with ``raise ... from exc`` so callers only ever see these types; ``describe``
puts one that was not foreseen (a bug) on one line for a message.
"""

from __future__ import annotations

# Exit statuses of the command line (the arrows above), and of a run's ``Outcome``.
EXIT_OK = 0
EXIT_FAILED = 1  # a node, the source or the run failed
EXIT_USAGE = 2  # bad input: the job file, the checkpoint, credentials, a full disk
EXIT_PAUSED = 75  # the API asked to wait longer than [rate] max_pause: resume after the time said
EXIT_STOPPED = 130  # stopped by a signal (Ctrl-C, SIGTERM); resume continues


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


class WriteError(CheckpointError):
    """The checkpoint could not be written (the disk is full, the filesystem read-only, an
    I/O error): what was committed before is intact, so the run stops and resumes later."""


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


class BodyTooLarge(QueryError):
    """An answer larger than the cap on a body read (``request.max_body``): refused on
    its ``Content-Length`` (``announced``) or once more than the cap had come (``read``),
    its connection dropped. No retry makes it smaller."""

    def __init__(
        self, limit: int, *, announced: int | None = None, read: int | None = None
    ) -> None:
        what = f"{announced} bytes announced" if announced is not None else f"{read} bytes read"
        super().__init__(f"answer larger than {limit} bytes: {what}", transient=False)
        self.limit, self.announced, self.read = limit, announced, read


class AuthError(ResumerError):
    """The API refused the credentials (HTTP 401), or no token could be had (the token
    URL or ``token_command`` failed for good).

    Never a node's fault: the runner puts the node back to pending, stops the run
    as a Ctrl-C would (everything checkpointed, nothing failed) and raises this
    error once the run is shut down; the message says what was refused and how
    to resume. Raised by ``http.auth`` and ``query.client``; the CLI exits 2.
    """


class TlsError(AuthError):
    """The TLS handshake failed: the server's certificate is not trusted, or the server
    wants a client certificate (or, past the handshake, answers so: nginx's 400 page, 495
    or 496). Authentication too (of the server, or of us), and every call would fail the
    same way, so the run stops as for a 401; the message names the ``[request.tls]`` key
    that fixes it."""


class ProxyAuthError(AuthError):
    """The proxy refused its credentials: an HTTP proxy's 407 (to a call, or to the
    ``CONNECT`` of an HTTPS one), or a SOCKS5 proxy rejecting the user. Every call would
    be refused the same way and no retry mends it, so the run stops as for a 401; the
    message says to check the proxy URL's user and password (never shows them)."""


class StopError(AuthError):
    """An answer a ``[[response.rule]]`` says stops the run (``then = "stop"``): the API
    refuses to go on (a closed account, a maintenance notice). As for a refused token,
    the run stops as a Ctrl-C would, nothing failed; the message gives the rule and the
    API's own words. Raised by ``query.client``; the CLI exits 2."""


class TemplateError(ResumerError, ValueError):
    """A template string is malformed; the message says what is wrong.

    Raised by ``job.template.Template.compile`` (and importable from there); the
    job loader turns it into a ``ConfigError`` naming the file and the key.
    Still a ``ValueError``, as it was before it joined this tree.
    """


class Throttled(ResumerError):
    """A throttled attempt handed back (``Retrier.call(..., park=True)``) instead of waited
    out in the worker's thread: the runner parks the node for ``delay`` seconds, with
    attempts left, and the worker goes on with another. It never reaches the CLI."""

    def __init__(self, error: QueryError, delay: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class Stopped(ResumerError):
    """A stop was requested while a query waited: abandon it, don't fail it.

    Raised by the policies' waits (``policies.retry``, ``breaker``, ``pacer``,
    ``gate``; importable from ``resumer.policies``); the runner answers it by
    putting the node back to pending. It never reaches the CLI.
    """

    def __init__(self, message: str = "a stop was requested while a query waited") -> None:
        super().__init__(message)


TOO_DEEP = "an item is nested too deeply to store"  # the mapping's and the store's word


class UnstorablePage(ResumerError):
    """A node's children could not be read again to be stored: a ``Streamed`` page is read
    again in the coordinator's thread, and an item nested within a few frames of the
    recursion limit may pass its check in a worker's shallower stack and not there.

    Raised inside a store transaction (``checkpoint.transaction``); the runner rolls its
    savepoint back and stores the batch again with this node failed. It never reaches
    the CLI.
    """

    def __init__(self, node: int, item_id: str, error: str) -> None:
        super().__init__(error)
        self.node, self.item_id = node, item_id


class RunError(ResumerError):
    """The run could not go on: the coordinator met an error it has no answer for.

    The workers are shut down first and nothing committed is lost; the nodes
    claimed but not stored are pending again, so the message ends with the
    command that resumes the job. The cause is chained (``__cause__``) and its
    traceback logged at DEBUG.
    """


def describe(error: BaseException) -> str:
    """``Type: message`` on one line, for a log line or a message; never raises.

    >>> describe(ZeroDivisionError("division by zero"))
    'ZeroDivisionError: division by zero'
    >>> describe(KeyboardInterrupt())
    'KeyboardInterrupt'
    """
    name = type(error).__name__
    try:
        text = " ".join(str(error).split())
    except Exception:  # a broken __str__ must not turn a report into a second failure
        return f"{name} (its message could not be read)"
    return f"{name}: {text}" if text else name
