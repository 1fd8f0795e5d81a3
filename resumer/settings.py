"""The settings of a job: frozen, validated values, and their defaults.

``Job`` is what a job file (``jobfile.load_job``) or ``jobfile.job_from_dict``
gives: every section a frozen dataclass (``Request``, ``Retry``, ``Rate``, ...),
with the defaults below as named constants, units in their comments. ``Job``
also fills its ``${VAR}``s from the environment, checked as at load.

This module does not read or write job files (``jobfile``), nor declare their
keys (``jobkeys``); it reads no database and makes no HTTP call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from resumer.checks import (
    header_value_problem,
    mask_userinfo,
    proxy_problem,
    proxy_secrets,
    url_problem,
    with_samples,
)
from resumer.errors import ConfigError
from resumer.messages import dotted_key, quoted
from resumer.template import Redactor, Template

# Defaults (units in the names' comments).
DEFAULT_METHOD = "GET"
DEFAULT_TEMPLATE = MappingProxyType({"id": "{id}", "name": "{name}", "type": "{type}"})
DEFAULT_TIMEOUT = 10.0  # seconds, connect + read, per HTTP call
DEFAULT_MAX_DEPTH = 4  # the leaf level
DEFAULT_HTTP_CONCURRENCY = 16  # HTTP calls in flight, all levels together
DEFAULT_WORKERS = 4  # worker threads per queried level
DEFAULT_GRACE = 10.0  # seconds to drain in-flight queries after the first Ctrl-C
DEFAULT_ATTEMPTS = 5  # calls per query in all, the first included
DEFAULT_BACKOFF_INITIAL = 0.5  # seconds: the first backoff's upper bound
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_BACKOFF_MAX = 30.0  # seconds: the largest backoff, and the cap on a Retry-After
DEFAULT_RETRY_ON = (408, 425, 429, 500, 502, 503, 504)  # HTTP statuses worth a retry
DEFAULT_FAILURE_THRESHOLD = 5  # consecutive transient failures that open the breaker
DEFAULT_RESET_TIMEOUT = 30.0  # seconds the breaker stays open before a probe call
DEFAULT_PAGE_SIZE = 100  # items per page asked for, when paginating by page or offset
DEFAULT_MIN_CONCURRENCY = 1  # HTTP calls in flight at least, when the limit floats
DEFAULT_RATE = 0.0  # calls a second at most; 0 = no ceiling
DEFAULT_BURST = 1  # calls the rate lets through at once
DEFAULT_PACING = True  # the send rate floats with throttles and rate-limit headers
DEFAULT_ORDER = "depth-first"  # or "breadth-first": which levels' nodes are claimed first
DEFAULT_ALERT_WINDOW = 60.0  # seconds: the window the error rate is measured over
DEFAULT_METRICS_HOST = "127.0.0.1"  # the address metrics are served on
DEFAULT_BACKUPS_KEPT = 5  # periodic backups kept beside the checkpoint
PAGINATION_MODES = ("page", "cursor", "link", "offset", "next_url")
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
    proxy: str | None = None  # templated (``${VAR}`` for its password); None: the environment's
    tls: Tls = Tls()


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
class Response:
    items: str
    id: str
    name: str
    type: str
    pagination: Pagination | None = None


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


@dataclass(frozen=True, slots=True)
class Crawl:
    max_depth: int
    http_concurrency: int
    grace: float
    adaptive: bool = False
    min_concurrency: int = DEFAULT_MIN_CONCURRENCY


@dataclass(frozen=True, slots=True)
class Level:
    workers: int
    timeout: float
    attempts: int = DEFAULT_ATTEMPTS


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: where the ``Authorization`` value comes from (``auth.authorizer``).

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

    def templated(self) -> list[str]:
        """The strings whose ``${VAR}``s are read from the environment."""
        keys = ("token_url", "client_id", "client_secret", "scope", "token", "username")
        return [value for key in (*keys, "password") if (value := getattr(self, key))]


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job. ``text`` is the job file exactly as written (``${VAR}`` kept).

    >>> from resumer.jobfile import parse_job
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
    rate: Rate = Rate(DEFAULT_RATE, DEFAULT_BURST, DEFAULT_PACING)
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
        strings += self.auth.templated() if self.auth is not None else []
        return strings

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The values of the job's ``${VAR}``s; an undefined one is a ``ConfigError``, and
        so is a value that makes a URL or a header unusable (the message never shows it)."""
        environ = os.environ if environ is None else environ
        missing = [name for name in self.env_vars() if name not in environ]
        if missing:
            names = ", ".join(missing)
            raise ConfigError(
                f"{self.origin}: environment variable {names} is not set "
                f"(the job file refers to ${{{missing[0]}}})"
            )
        env = {name: environ[name] for name in self.env_vars()}
        self._check_environment(env)
        self._check_auth(env)
        return env

    def _check_auth(self, env: Mapping[str, str]) -> None:
        """An ``[auth]`` value from the environment that cannot work (empty, a token or
        user name that cannot be sent) is a ``ConfigError``; the message never shows it."""
        for key in ("client_id", "client_secret", "token", "username"):
            text = getattr(self.auth, key, None)
            if not text:
                continue
            value = Template.compile(text).bind_env(env).render({})
            problem = "is empty" if not value else None
            if value and key == "token":
                problem = header_value_problem(value)
            if value and key == "username" and ":" in value:
                problem = "holds a colon, which basic credentials cannot carry (RFC 7617)"
            if problem:
                names = ", ".join(f"${{{n}}}" for n in Template.compile(text).env_vars)
                raise ConfigError(f"{self.origin}: auth.{key}: the value of {names} {problem}")

    def _check_environment(self, env: Mapping[str, str]) -> None:
        """The load-time URL and header checks again, with the environment's values in."""
        hide = Redactor(env.values())
        for dotted, text in self._urls():
            names = Template.compile(text).env_vars
            check = proxy_problem if dotted == "request.proxy" else url_problem
            problem = check(with_samples(text, env)) if names else None
            if problem:
                where = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
                raise ConfigError(
                    f"{self.origin}: {dotted}: {quoted(mask_userinfo(text))} "
                    f"{hide.redact(problem)} "
                    f"(with {where} from the environment)"
                )
        for name, text in self.request.headers.items():
            for var in Template.compile(text).env_vars:
                problem = header_value_problem(env[var])
                if problem:
                    raise ConfigError(
                        f"{self.origin}: request.headers.{dotted_key(name)}: "
                        f"the value of ${{{var}}} {hide.redact(problem)}"
                    )

    def _urls(self) -> Iterator[tuple[str, str]]:
        if self.source.url is not None:
            yield "source.url", self.source.url
        if self.auth is not None and self.auth.token_url:
            yield "auth.token_url", self.auth.token_url
        yield "request.url", self.request.url
        if self.alerts.webhook:
            yield "alerts.webhook", self.alerts.webhook
        if self.request.proxy:
            yield "request.proxy", self.request.proxy

    def secrets(self, env: Mapping[str, str]) -> list[str]:
        """Every value to mask in what leaves the process: the ``${VAR}`` values, and a
        password written in ``request.proxy`` itself."""
        found = list(env.values())
        if self.request.proxy:
            proxy = Template.compile(self.request.proxy).bind_env(env).render({})
            found += proxy_secrets(proxy)
        return found


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, tuple):
        return [s for item in value for s in _strings_in(item)]
    return [value] if isinstance(value, str) else []
