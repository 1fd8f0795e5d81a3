"""The settings of a job: frozen, validated values, and their defaults.

``Job`` is what a job file (``loader.load_job``) or ``loader.job_from_dict``
gives: every section a frozen dataclass (``Request``, ``Retry``, ``Rate``, ...),
with the defaults below as named constants, units in their comments. Its strings
are as written: ``${VAR}``s are filled in by ``bound.bind``, for a run.

This module does not read or write job files (``loader``), nor declare their
keys (``keys``); it reads no database and makes no HTTP call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from resumer.job.template import Template

# The policies' defaults, named with the job file's (``X as X``: re-exported from here).
from resumer.policies.defaults import DEFAULT_ATTEMPTS as DEFAULT_ATTEMPTS
from resumer.policies.defaults import DEFAULT_BACKOFF_INITIAL as DEFAULT_BACKOFF_INITIAL
from resumer.policies.defaults import DEFAULT_BACKOFF_MAX as DEFAULT_BACKOFF_MAX
from resumer.policies.defaults import DEFAULT_BACKOFF_MULTIPLIER as DEFAULT_BACKOFF_MULTIPLIER
from resumer.policies.defaults import DEFAULT_BURST as DEFAULT_BURST
from resumer.policies.defaults import DEFAULT_FAILURE_THRESHOLD as DEFAULT_FAILURE_THRESHOLD
from resumer.policies.defaults import DEFAULT_MAX_PAUSE as DEFAULT_MAX_PAUSE
from resumer.policies.defaults import DEFAULT_MIN_CONCURRENCY as DEFAULT_MIN_CONCURRENCY
from resumer.policies.defaults import DEFAULT_PACING as DEFAULT_PACING
from resumer.policies.defaults import DEFAULT_RATE as DEFAULT_RATE
from resumer.policies.defaults import DEFAULT_RESET_TIMEOUT as DEFAULT_RESET_TIMEOUT
from resumer.policies.defaults import DEFAULT_RETRY_ON as DEFAULT_RETRY_ON

# Defaults (units in the names' comments); the policies' own are named where they live.
DEFAULT_METHOD = "GET"
DEFAULT_TEMPLATE = MappingProxyType({"id": "{id}", "name": "{name}", "type": "{type}"})
DEFAULT_TIMEOUT = 10.0  # seconds, connect + read, per HTTP call
ENGINES = ("curl", "httpx")  # what makes the HTTP calls: libcurl (through pycurl), or httpx
DEFAULT_ENGINE = "curl"  # the one with less CPU a call; httpx when pycurl cannot be imported
DEFAULT_MAX_BODY = 256 * 1024**2  # bytes: the largest answer body read
DEFAULT_MAX_DEPTH = 4  # the leaf level
DEFAULT_HTTP_CONCURRENCY = 16  # HTTP calls in flight, all levels together
DEFAULT_WORKERS = 4  # worker threads per queried level
DEFAULT_GRACE = 10.0  # seconds to drain in-flight queries after the first Ctrl-C
DEFAULT_PAGE_SIZE = 100  # items per page asked for, when paginating by page or offset
DEFAULT_ORDER = "depth-first"  # or "breadth-first": which levels' nodes are claimed first
DEFAULT_ALERT_WINDOW = 60.0  # seconds: the window the error rate is measured over
DEFAULT_METRICS_HOST = "127.0.0.1"  # the address metrics are served on
DEFAULT_BACKUPS_KEPT = 5  # periodic backups kept beside the checkpoint
PAGINATION_MODES = ("page", "cursor", "link", "offset", "next_url")
RULE_OUTCOMES = ("ok", "empty", "retry", "throttle", "fail", "renew", "stop")
CONDITION_TESTS = ("in", "not_in", "missing", "present")
AUTH_TYPES = ("oauth2", "bearer", "basic")


@dataclass(frozen=True, slots=True)
class Source:
    url: str | None
    file: Path | None  # absolute: resolved against the job file's folder


@dataclass(frozen=True, slots=True)
class Tls:
    """``[request.tls]``; paths are absolute (resolved against the job file's folder)."""

    verify: bool = True
    ca_bundle: Path | None = None  # None: the system's trust store (and SSL_CERT_FILE/DIR)
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    method: str
    params: Mapping[str, Any]
    body: Any  # frozen JSON value (MappingProxyType / tuple / scalars), or None for GET
    headers: Mapping[str, str]
    timeout: float
    max_body: int = DEFAULT_MAX_BODY  # bytes: a larger answer fails its query for good
    proxy: str | None = None  # templated (``${VAR}`` for its password); None: the environment's
    tls: Tls = Tls()
    engine: str = DEFAULT_ENGINE  # one of ENGINES


@dataclass(frozen=True, slots=True)
class Pagination:
    mode: str  # one of PAGINATION_MODES
    page_param: str
    start: int
    size_param: str
    size: int
    cursor_path: str
    cursor_param: str
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = DEFAULT_PAGE_SIZE
    next_url_path: str = "links.next"


@dataclass(frozen=True, slots=True)
class Condition:
    """A test of one field of a JSON document (``field``: a dotted path): its value is
    one of ``values`` (``test = "in"``), none of them (``"not_in"``; absent counts as
    none), absent or null (``"missing"``), or present and not null (``"present"``).
    Values are kept as written; they compare as text (``query.conditions``)."""

    field: str
    test: str  # one of CONDITION_TESTS
    values: tuple[str | int | float | bool, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[response.rule]]``: when all its conditions hold, ``then`` decides what the
    answer means (``query.answers``). ``number`` counts from 1, in the job file's order."""

    number: int
    then: str  # one of RULE_OUTCOMES
    status: frozenset[int] = frozenset()  # any of these HTTP statuses; empty: any status
    condition: Condition | None = None
    contains: str | None = None  # the raw body holds this text
    wait: str | None = None  # retry, throttle: dotted path to the seconds to wait


@dataclass(frozen=True, slots=True)
class ItemRule:
    """One ``[[crawl.leaf]]`` or ``[[crawl.drop]]``: items whose ``condition`` holds are
    stored as leaves (never queried), or not stored at all. ``levels``: the items' levels
    it applies to (empty: every level). ``number`` counts from 1 in its array."""

    number: int
    condition: Condition
    levels: frozenset[int] = frozenset()

    def applies_to(self, level: int) -> bool:
        return not self.levels or level in self.levels


@dataclass(frozen=True, slots=True)
class Response:
    items: str
    id: str
    name: str
    type: str
    pagination: Pagination | None = None
    message: str | None = None  # dotted path to the API's own error text
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int
    initial: float
    multiplier: float
    max: float
    retry_on: frozenset[int]


@dataclass(frozen=True, slots=True)
class Breaker:
    failure_threshold: int
    reset_timeout: float


@dataclass(frozen=True, slots=True)
class Priority:
    order: str  # "depth-first" or "breadth-first"
    types: Mapping[str, int]
    roots: Mapping[str, int]

    def of(self, level: int, item_id: str, item_type: str, parent_priority: int) -> int:
        """A node's priority: its parent's (a subtree inherits), plus its own weights."""
        weight = self.types.get(item_type, 0) + parent_priority
        return weight + self.roots.get(item_id, 0) if level == 1 else weight


@dataclass(frozen=True, slots=True)
class AlertSettings:
    error_rate: float
    window: float
    breaker_open: float
    stall: float
    failed_nodes: int
    webhook: str


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    port: int  # 0 = no metrics
    host: str


@dataclass(frozen=True, slots=True)
class Backup:
    every: float  # seconds; 0 = no periodic backup
    keep: int


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float  # calls a second at most; 0 = no ceiling
    burst: int
    adaptive: bool = DEFAULT_PACING  # the rate floats below per_second (policies.pacer)
    max_pause: float = DEFAULT_MAX_PAUSE  # seconds: a longer wait stops the run (exit 75)


@dataclass(frozen=True, slots=True)
class Crawl:
    max_depth: int
    http_concurrency: int
    grace: float
    adaptive: bool = False
    min_concurrency: int = DEFAULT_MIN_CONCURRENCY
    leaf: tuple[ItemRule, ...] = ()  # [[crawl.leaf]]: items stored as leaves
    drop: tuple[ItemRule, ...] = ()  # [[crawl.drop]]: items not stored


@dataclass(frozen=True, slots=True)
class Level:
    """``[levels.N]``: how the nodes OF level N are queried. ``request`` and ``response``
    are the top-level sections with ``[levels.N.request]`` / ``[levels.N.response]``
    applied (the top-level ones themselves when the level overrides nothing)."""

    workers: int
    timeout: float
    attempts: int = DEFAULT_ATTEMPTS
    max_body: int = DEFAULT_MAX_BODY  # bytes: [levels.N] max_body, else request.max_body
    request: Request | None = None  # None: [request]
    response: Response | None = None  # None: [response]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: where the ``Authorization`` value comes from (``http.auth.authorizer_for``).

    Strings are as written (``${VAR}`` kept, filled by ``auth`` at run time),
    except ``token_command``, which the shell runs as it is. Unused keys are None.
    """

    type: str  # one of AUTH_TYPES
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    client_auth: str = "basic"  # oauth2: HTTP basic (RFC 6749 2.3.1) or "form" fields
    token: str | None = None
    token_command: str | None = None
    username: str | None = None
    password: str | None = None

    # The keys whose ``${VAR}``s are read from the environment (``job.bound`` fills them).
    TEMPLATED: ClassVar[tuple[str, ...]] = (
        "token_url",
        "client_id",
        "client_secret",
        "scope",
        "token",
        "username",
        "password",
    )

    def templated(self) -> list[str]:
        """The strings whose ``${VAR}``s are read from the environment."""
        return [value for key in self.TEMPLATED if (value := getattr(self, key))]


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job. ``text`` is the job file exactly as written (``${VAR}`` kept).

    >>> from resumer.job.loader import parse_job
    >>> job = parse_job('[source]\\nfile = "r.csv"\\n[request]\\nurl = "http://h/c"\\n', "j.toml")
    >>> job.crawl.max_depth, job.level(1).workers
    (4, 4)
    """

    text: str
    origin: str
    base_dir: Path
    source: Source
    request: Request
    response: Response
    crawl: Crawl
    levels: Mapping[int, Level] = field(default_factory=lambda: MappingProxyType({}))
    retry: Retry = Retry(
        DEFAULT_ATTEMPTS,
        DEFAULT_BACKOFF_INITIAL,
        DEFAULT_BACKOFF_MULTIPLIER,
        DEFAULT_BACKOFF_MAX,
        frozenset(DEFAULT_RETRY_ON),
    )
    breaker: Breaker = Breaker(DEFAULT_FAILURE_THRESHOLD, DEFAULT_RESET_TIMEOUT)
    rate: Rate = Rate(DEFAULT_RATE, DEFAULT_BURST, DEFAULT_PACING, DEFAULT_MAX_PAUSE)
    backup: Backup = Backup(0.0, DEFAULT_BACKUPS_KEPT)
    metrics: MetricsSettings = MetricsSettings(0, DEFAULT_METRICS_HOST)
    alerts: AlertSettings = AlertSettings(0.0, DEFAULT_ALERT_WINDOW, 0.0, 0.0, 0, "")
    priority: Priority = Priority(DEFAULT_ORDER, MappingProxyType({}), MappingProxyType({}))
    auth: AuthSettings | None = None  # [auth]; None: no credentials but the headers' own

    @property
    def queried_levels(self) -> range:
        """Levels whose nodes are queried: 1 .. max_depth - 1."""
        return range(1, self.crawl.max_depth)

    def level(self, n: int) -> Level:
        return self.levels[n]

    def request_of(self, level: int) -> Request:
        """The request that queries the nodes of ``level`` (``[levels.N.request]`` applied)."""
        own = self.levels[level].request if level in self.levels else None
        return self.request if own is None else own

    def response_of(self, level: int) -> Response:
        """How the answers about the nodes of ``level`` are read (``[levels.N.response]``)."""
        own = self.levels[level].response if level in self.levels else None
        return self.response if own is None else own

    @property
    def shaped(self) -> bool:
        """Whether any ``[[crawl.leaf]]`` or ``[[crawl.drop]]`` rule is given."""
        return bool(self.crawl.leaf or self.crawl.drop)

    def env_vars(self) -> tuple[str, ...]:
        """Every ``${VAR}`` the job refers to, in order of appearance, without repeats."""
        names: list[str] = []
        for text in self.template_strings():
            names.extend(Template.compile(text).env_vars)
        return tuple(dict.fromkeys(names))

    def template_strings(self) -> list[str]:
        """Every string that is templated: URLs, params, headers and body values."""
        strings = [self.source.url or "", self.request.url, self.alerts.webhook]
        strings.append(self.request.proxy or "")
        strings += [*self.request.params.values(), *self.request.headers.values()]
        strings += _strings_in(self.request.body)
        for level in self.levels.values():
            if level.request is not None and level.request is not self.request:
                own = level.request
                strings += [own.url, *own.params.values(), *own.headers.values()]
                strings += _strings_in(own.body)
        strings += self.auth.templated() if self.auth is not None else []
        return strings


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, tuple):
        return [s for item in value for s in _strings_in(item)]
    return [value] if isinstance(value, str) else []
