"""The job file: its schema, loading, validation, and the frozen ``Job`` settings.

Everything a job file may contain is declared once in ``SCHEMA`` (types,
defaults, ranges, help); ``load_job`` checks a file against it and builds the
typed, immutable ``Job``. Every mistake becomes a one-line ``ConfigError``
naming the file, the line when it can be found, the key and what was expected.

This module reads no database and makes no HTTP call.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from resumer.errors import ConfigError
from resumer.template import PLACEHOLDERS, Redactor, Template, TemplateError, quote_segment

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
PAGINATION_MODES = ("page", "cursor", "link", "offset", "next_url")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
MAX_DURATION = 365 * 86400.0  # seconds: the longest duration a job file may give
MAX_JOB_FILE = 10_000_000  # characters: a job file is read whole, so it is bounded
MAX_JSON_DEPTH = 32  # levels of tables and arrays in request.body
SAMPLE_VALUE = "1"  # fills placeholders and ${VAR}s when a URL is checked at load
URL_SCHEMES = ("http", "https")

SOURCE_SUFFIXES = (".csv", ".json", ".jsonl")

_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the job file: its type, default, bounds and help text."""

    kind: str  # "str", "int", "float", "table", "json"
    default: Any = _REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        noun = {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "table": "a table of strings",
            "json": "a table",
            "bool": "true or false",
            "statuses": "a list of HTTP statuses (100 to 599)",
            "duration": 'a duration like "90s", "10m", "2h" or a number of seconds',
            "weights": "a table of integer weights",
        }[self.kind]
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.minimum is not None:
            return f"{noun} >= {_num(self.minimum)}"
        return noun


SCHEMA: Mapping[str, Mapping[str, Key]] = {
    "source": {
        "url": Key("str", None, help="URL of the level-1 list (GET; read with [response])"),
        "file": Key("str", None, help="a .csv, .json or .jsonl file of level-1 nodes"),
    },
    "request": {
        "url": Key("str", help="the children endpoint, queried once per node"),
        "method": Key("str", DEFAULT_METHOD, choices=("GET", "POST")),
        "params": Key("table", None, help="query-string parameters (templated)"),
        "body": Key("json", None, help="JSON body for POST (templated)"),
        "headers": Key("table", MappingProxyType({}), help="HTTP headers; ${VAR} for secrets"),
        "timeout": Key("float", DEFAULT_TIMEOUT, minimum=0.001, maximum=3600, help="seconds"),
        "proxy": Key(
            "str", None, help="proxy URL for every call; default: HTTP(S)_PROXY / NO_PROXY"
        ),
    },
    "response": {
        "items": Key("str", "", help='dotted path to the list of items; "" = the body'),
        "id": Key("str", "id", help="dotted path to an item's id"),
        "name": Key("str", "name", help="dotted path to an item's name"),
        "type": Key("str", "type", help="dotted path to an item's type"),
    },
    "crawl": {
        "max_depth": Key("int", DEFAULT_MAX_DEPTH, minimum=1, maximum=64, help="the leaf level"),
        "http_concurrency": Key("int", DEFAULT_HTTP_CONCURRENCY, minimum=1, maximum=1024),
        "grace": Key("float", DEFAULT_GRACE, minimum=0, maximum=3600, help="seconds"),
        "adaptive": Key(
            "bool", False, help="let the in-flight limit float with the server's health"
        ),
        "min_concurrency": Key("int", 1, minimum=1, maximum=1024, help="adaptive's floor"),
    },
    "retry": {
        "attempts": Key("int", DEFAULT_ATTEMPTS, minimum=1, maximum=100, help="calls per query"),
        "initial": Key("float", DEFAULT_BACKOFF_INITIAL, minimum=0, maximum=3600, help="seconds"),
        "multiplier": Key("float", DEFAULT_BACKOFF_MULTIPLIER, minimum=1, maximum=100),
        "max": Key("float", DEFAULT_BACKOFF_MAX, minimum=0, maximum=86400, help="seconds"),
        "retry_on": Key("statuses", DEFAULT_RETRY_ON, help="HTTP statuses retried"),
    },
    "breaker": {
        "failure_threshold": Key("int", DEFAULT_FAILURE_THRESHOLD, minimum=1, maximum=1_000_000),
        "reset_timeout": Key("float", DEFAULT_RESET_TIMEOUT, minimum=0, maximum=86400),
    },
    "rate": {
        "per_second": Key("float", 0.0, minimum=0, maximum=1_000_000, help="the ceiling; 0 = none"),
        "burst": Key("int", 1, minimum=1, maximum=1_000_000, help="calls allowed at once"),
        "adaptive": Key("bool", True, help="the rate floats with throttles and rate-limit headers"),
    },
    "priority": {
        "order": Key(
            "str", "depth-first", choices=("depth-first", "breadth-first"), help="levels first"
        ),
        "types": Key("weights", MappingProxyType({}), help="weight per node type"),
        "roots": Key("weights", MappingProxyType({}), help="weight per level-1 id"),
    },
    "alerts": {
        "error_rate": Key("float", 0.0, minimum=0, maximum=1, help="share of calls; 0 = off"),
        "window": Key(
            "duration", 60.0, minimum=0, maximum=MAX_DURATION, help="the error rate's window"
        ),
        "breaker_open": Key(
            "duration", 0.0, minimum=0, maximum=MAX_DURATION, help="open longer than this; 0 = off"
        ),
        "stall": Key(
            "duration",
            0.0,
            minimum=0,
            maximum=MAX_DURATION,
            help="no query stored for this long; 0 = off",
        ),
        "failed_nodes": Key("int", 0, minimum=0, maximum=10**12, help="more than; 0 = off"),
        "webhook": Key("str", "", help="POST each change here as JSON (${VAR} allowed)"),
    },
    "metrics": {
        "port": Key("int", 0, minimum=0, maximum=65535, help="serve Prometheus metrics; 0 = off"),
        "host": Key("str", "127.0.0.1", help="address to serve them on"),
    },
    "backup": {
        "every": Key(
            "duration",
            0.0,
            minimum=0,
            maximum=MAX_DURATION,
            help='periodic backups: "10m", "1h", seconds; 0 = none',
        ),
        "keep": Key("int", 5, minimum=1, maximum=10_000, help="periodic backups kept"),
    },
}

PAGINATION_SCHEMA: Mapping[str, Key] = {
    "mode": Key(
        "str",
        choices=PAGINATION_MODES,
        help="page numbers, a cursor in the body, the Link header, offset/limit, a URL in the body",
    ),
    "page_param": Key("str", "page", help="page mode: the page number's parameter"),
    "start": Key("int", 1, minimum=0, maximum=1_000_000, help="page mode: the first page"),
    "size_param": Key("str", "size", help='the page size\'s parameter ("" = not sent)'),
    "size": Key("int", DEFAULT_PAGE_SIZE, minimum=1, maximum=1_000_000, help="items per page"),
    "cursor_path": Key("str", "next", help="cursor mode: dotted path to the next cursor"),
    "cursor_param": Key("str", "cursor", help="cursor mode: the parameter that sends it"),
    "offset_param": Key("str", "offset", help="offset mode: the first item's parameter"),
    "limit_param": Key("str", "limit", help="offset mode: the page size's parameter"),
    "limit": Key("int", DEFAULT_PAGE_SIZE, minimum=1, maximum=1_000_000, help="offset mode"),
    "next_url_path": Key("str", "links.next", help="next_url mode: dotted path to the next URL"),
}
# The keys each mode reads (besides ``mode``); a key of another mode is refused, except
# that page and cursor keep accepting each other's, as they always did.
PAGINATION_KEYS: Mapping[str, tuple[str, ...]] = {
    "page": ("page_param", "start", "size_param", "size", "cursor_path", "cursor_param"),
    "cursor": ("page_param", "start", "size_param", "size", "cursor_path", "cursor_param"),
    "offset": ("offset_param", "limit_param", "limit"),
    "link": (),
    "next_url": ("next_url_path",),
}

TLS_SCHEMA: Mapping[str, Key] = {
    "verify": Key("bool", True, help="false: no certificate check (a WARNING at start)"),
    "ca_bundle": Key("str", None, help="CA certificates (PEM) to trust instead of the system's"),
    "client_cert": Key("str", None, help="mutual TLS: the client certificate (PEM)"),
    "client_key": Key("str", None, help="its private key (PEM), unless client_cert holds it"),
}

AUTH_TYPES = ("oauth2", "bearer", "basic")
AUTH_SCHEMA: Mapping[str, Key] = {
    "type": Key("str", choices=AUTH_TYPES, help="OAuth2 client credentials, a bearer token, basic"),
    "token_url": Key("str", None, help="oauth2: where tokens are asked for (POST)"),
    "client_id": Key("str", None, help="oauth2"),
    "client_secret": Key("str", None, help="oauth2; a ${VAR}"),
    "scope": Key("str", None, help="oauth2: the scope asked for (optional)"),
    "client_auth": Key(
        "str", "basic", choices=("basic", "form"), help="oauth2: the client's id and secret"
    ),
    "token": Key("str", None, help="bearer: the token; a ${VAR}"),
    "token_command": Key("str", None, help="bearer: a shell command printing the token"),
    "username": Key("str", None, help="basic"),
    "password": Key("str", None, help="basic; a ${VAR}"),
}
# The keys each type reads (besides ``type``); those of ``AUTH_REQUIRED`` must be given.
AUTH_KEYS: Mapping[str, tuple[str, ...]] = {
    "oauth2": ("token_url", "client_id", "client_secret", "scope", "client_auth"),
    "bearer": ("token", "token_command"),
    "basic": ("username", "password"),
}
AUTH_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "oauth2": ("token_url", "client_id", "client_secret"),
    "bearer": (),  # exactly one of token / token_command
    "basic": ("username", "password"),
}
# Written as ``${VAR}`` only: the job file is stored in the checkpoint, a secret must not be.
AUTH_SECRETS = ("client_secret", "token", "password")

LEVEL_SCHEMA: Mapping[str, Key] = {
    "workers": Key("int", DEFAULT_WORKERS, minimum=1, maximum=512, help="worker threads"),
    "timeout": Key("float", None, minimum=0.001, maximum=3600, help="overrides request.timeout"),
    "attempts": Key("int", None, minimum=1, maximum=100, help="overrides retry.attempts"),
}


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


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
    adaptive: bool = True  # the rate floats below per_second (policies.pacer)


@dataclass(frozen=True, slots=True)
class Crawl:
    max_depth: int
    http_concurrency: int
    grace: float
    adaptive: bool = False
    min_concurrency: int = 1


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
    rate: Rate = Rate(0.0, 1, True)
    backup: Backup = Backup(0.0, 5)
    metrics: MetricsSettings = MetricsSettings(0, "127.0.0.1")
    alerts: AlertSettings = AlertSettings(0.0, 60.0, 0.0, 0.0, 0, "")
    priority: Priority = Priority("depth-first", MappingProxyType({}), MappingProxyType({}))
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
            problem = check(_filled(text, env)) if names else None
            if problem:
                where = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
                raise ConfigError(
                    f"{self.origin}: {dotted}: {_quoted(mask_userinfo(text))} "
                    f"{hide.redact(problem)} "
                    f"(with {where} from the environment)"
                )
        for name, text in self.request.headers.items():
            for var in Template.compile(text).env_vars:
                problem = header_value_problem(env[var])
                if problem:
                    raise ConfigError(
                        f"{self.origin}: request.headers.{_key(name)}: the value of ${{{var}}} "
                        f"{hide.redact(problem)}"
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


def job_from_dict(settings: Mapping[str, object], base_dir: Path | None = None) -> Job:
    """A job built in code: the same tables as a job file, validated the same way.

    >>> job = job_from_dict({"source": {"file": "r.csv"}, "request": {"url": "http://h/c"}})
    >>> job.crawl.http_concurrency
    16
    """
    try:
        text = to_toml(settings)
    except ConfigError as exc:
        raise ConfigError(one_line(f"{BUILT_IN_CODE}: {exc}")) from None
    except RecursionError:
        raise ConfigError(f"{BUILT_IN_CODE}: tables nested too deeply") from None
    return parse_job(text, BUILT_IN_CODE, base_dir)


BUILT_IN_CODE = "<job built in code>"  # the origin of a job_from_dict job, in messages


def to_toml(settings: Mapping[str, Any]) -> str:
    """TOML text for a job's tables (what the checkpoint stores, to resume from).

    Each top-level table is a section; tables inside one (``levels.N``,
    ``pagination``, ``params``, ...) are written inline, which TOML reads alike.
    A value TOML cannot hold is a ``ConfigError`` naming its key.
    """
    scalars = [
        f"{_toml_key(k)} = {_toml_value(v, _key(k))}"
        for k, v in settings.items()
        if not isinstance(v, Mapping)
    ]
    sections: list[str] = []
    for name, value in settings.items():
        if isinstance(value, Mapping):
            sections.append(f"[{_toml_key(name)}]")
            sections += [
                f"{_toml_key(k)} = {_toml_value(v, f'{_key(name)}.{_key(k)}')}"
                for k, v in value.items()
            ]
    return "\n".join([*scalars, *sections]) + "\n"


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else _toml_string(text, text)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            return repr(value)
        except ValueError:  # more digits than Python writes out
            raise ConfigError(f"{where}: cannot write an integer this long in a job file") from None
    if isinstance(value, str):
        return _toml_string(value, where)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v, f'{where}.{_key(k)}')}" for k, v in value.items()
        )
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, f"{where}[]") for v in value) + "]"
    raise ConfigError(f"{where}: cannot write {_describe(value)} in a job file")


def _toml_string(text: str, where: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where}: a string with a lone surrogate is not text") from None
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def load_job(path: str | Path) -> Job:
    """Read and validate a job file."""
    path = Path(path)
    try:
        text = _read_text(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such job file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a job file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the job file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read the job file (not UTF-8: {exc.reason})") from exc
    return parse_job(text, str(path), base_dir=path.resolve().parent)


def _read_text(path: Path) -> str:
    # Opened without blocking: a named pipe nobody writes to reads as empty at once
    # instead of hanging (``<(command)`` still works: reads then wait for its data).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    with open(fd, encoding="utf-8") as handle:
        text = handle.read(MAX_JOB_FILE + 1)
    if len(text) > MAX_JOB_FILE:  # /dev/zero, a log file named by mistake
        raise ConfigError(f"{path}: not a job file (more than {MAX_JOB_FILE:,} characters)")
    return text


def parse_job(
    text: str, origin: str, base_dir: Path | None = None, *, lenient: bool = False
) -> Job:
    """Validate job file text; ``origin`` names it in messages.

    ``lenient`` skips the checks of URLs and headers, for reading a job stored by an
    earlier resumer that did not make them (``status`` and ``export`` must still work).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(one_line(f"{origin}: not valid TOML: {exc}")) from exc
    except RecursionError:
        raise ConfigError(f"{origin}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise ConfigError(f"{origin}: not valid TOML: an integer with too many digits") from None
    try:
        return _Validator(text, origin, base_dir or Path.cwd(), lenient=lenient).job(raw)
    except RecursionError:
        raise ConfigError(f"{origin}: tables nested too deeply") from None


class _Validator:
    def __init__(self, text: str, origin: str, base_dir: Path, *, lenient: bool = False) -> None:
        self.text = text
        self.origin = origin
        self.base_dir = base_dir
        self.lenient = lenient

    def fail(self, section: str, key: str | None, message: str) -> ConfigError:
        dotted = f"{section}.{key}" if key else f"[{section}]"
        line = _line_of(self.text, section, key)
        where = f"{self.origin}:{line}" if line else self.origin
        return ConfigError(one_line(f"{where}: {dotted}: {message}"))

    def job(self, raw: dict[str, Any]) -> Job:
        for name in raw:
            if name not in SCHEMA and name not in ("levels", "auth"):
                known = ", ".join(f"[{s}]" for s in [*SCHEMA, "levels.N", "auth"])
                line = _line_of(self.text, name, None)
                where = f"{self.origin}:{line}" if line else self.origin
                raise ConfigError(
                    one_line(f"{where}: unknown section [{_key(name)}] (known: {known})")
                )
        tls_raw = None
        if isinstance(raw.get("request"), dict) and "tls" in raw["request"]:
            # [request.tls] is a table of its own inside [request].
            request_raw = dict(raw["request"])
            tls_raw = request_raw.pop("tls")
            raw = {**raw, "request": request_raw}
        pagination_raw = None
        if isinstance(raw.get("response"), dict) and "pagination" in raw["response"]:
            # [response.pagination] is a table of its own inside [response].
            response_raw = dict(raw["response"])
            pagination_raw = response_raw.pop("pagination")
            raw = {**raw, "response": response_raw}
        values = {name: self.section(name, raw.get(name, {})) for name in SCHEMA}
        crawl = self.crawl(values["crawl"])
        request = self.request(values["request"], tls_raw)
        retry = Retry(**{**values["retry"], "retry_on": frozenset(values["retry"]["retry_on"])})
        return Job(
            text=self.text,
            origin=self.origin,
            base_dir=self.base_dir,
            source=self.source(values["source"]),
            request=request,
            response=Response(**values["response"], pagination=self.pagination(pagination_raw)),
            crawl=crawl,
            levels=self.levels(raw.get("levels", {}), crawl, request.timeout, retry.attempts),
            retry=retry,
            breaker=Breaker(**values["breaker"]),
            rate=Rate(**values["rate"]),
            backup=Backup(**values["backup"]),
            metrics=MetricsSettings(**values["metrics"]),
            alerts=self.alerts(values["alerts"]),
            priority=Priority(**values["priority"]),
            auth=self.auth(raw.get("auth"), request),
        )

    def auth(self, raw: Any, request: Request) -> AuthSettings | None:
        """``[auth]``: one type, its keys only; secrets written as ``${VAR}`` (the job
        file is stored in the checkpoint); no ``Authorization`` header beside it."""
        if raw is None:
            return None
        values = self.section("auth", raw, AUTH_SCHEMA)
        kind = values["type"]
        for key in raw:
            if key != "type" and key not in AUTH_KEYS[kind]:
                owner = next(t for t, keys in AUTH_KEYS.items() if key in keys)
                mine = ", ".join(AUTH_KEYS[kind])
                raise self.fail(
                    "auth", key, f'is for type = "{owner}", not "{kind}" (its keys: {mine})'
                )
        for key in AUTH_REQUIRED[kind]:
            if not values[key]:
                raise self.fail("auth", key, f'missing; type = "{kind}" needs it')
        if kind == "bearer":
            self.bearer(values["token"], values["token_command"])
        for key in AUTH_KEYS[kind]:
            if key != "token_command" and isinstance(values[key], str):
                self.auth_template(key, values[key])
        if values["token_url"] is not None:
            self.url("auth", "token_url", values["token_url"], per_node=False)
        if any(name.lower() == "authorization" for name in request.headers):
            raise self.fail(
                "request", "headers.Authorization", "[auth] sends it: drop one of the two"
            )
        return AuthSettings(**values)

    def bearer(self, token: str | None, command: str | None) -> None:
        if (token is None) == (command is None):
            both = "both are set" if token is not None else "neither is set"
            raise self.fail(
                "auth", None, f'type = "bearer": expected token or token_command; {both}'
            )
        if command is not None and not command.strip():
            raise self.fail("auth", "token_command", "expected a command, got an empty string")

    def auth_template(self, key: str, value: str) -> None:
        """An [auth] string: ``${VAR}``s only (no node here); a secret nothing else."""
        self.template("auth", key, value)
        parts = Template.compile(value).parts
        if any(kind == "var" for kind, _ in parts):
            raise self.fail("auth", key, "placeholders like {id} have no value here (no node)")
        if key in AUTH_SECRETS and not self.lenient and any(kind == "lit" for kind, _ in parts):
            raise self.fail(
                "auth",
                key,
                'expected a ${VAR} (like "${API_SECRET}"): the job file is stored in the '
                "checkpoint, so a secret is read from the environment at run time",
            )

    def alerts(self, values: dict[str, Any]) -> AlertSettings:
        if values["webhook"]:
            self.url("alerts", "webhook", values["webhook"], per_node=False)
        return AlertSettings(**values)

    def crawl(self, values: dict[str, Any]) -> Crawl:
        crawl = Crawl(**values)
        if crawl.min_concurrency > crawl.http_concurrency:
            raise self.fail(
                "crawl",
                "min_concurrency",
                f"expected at most crawl.http_concurrency ({crawl.http_concurrency}), "
                f"got {crawl.min_concurrency}",
            )
        return crawl

    def pagination(self, raw: Any) -> Pagination | None:
        if raw is None:
            return None
        values = self.section("response.pagination", raw, PAGINATION_SCHEMA)
        mode = values["mode"]
        for key in raw:
            if key != "mode" and key not in PAGINATION_KEYS[mode]:
                owner = next(m for m, keys in PAGINATION_KEYS.items() if key in keys)
                mine = ", ".join(PAGINATION_KEYS[mode]) or "none besides mode"
                raise self.fail(
                    "response.pagination",
                    key,
                    f'is for mode = "{owner}", not "{mode}" (the keys of "{mode}": {mine})',
                )
        for key in ("page_param", "cursor_path", "cursor_param", *PAGINATION_KEYS[mode]):
            if values[key] == "" and key != "size_param":  # size_param "": the size is not sent
                raise self.fail("response.pagination", key, "expected a non-empty string")
        return Pagination(**values)

    def tls(self, raw: Any) -> Tls:
        """``[request.tls]``: each file given must exist (unless lenient: a stored job
        is read for status and export even after its certificates are gone)."""
        if raw is None:
            return Tls()
        values = self.section("request.tls", raw, TLS_SCHEMA)
        paths: dict[str, Path | None] = {}
        for key in ("ca_bundle", "client_cert", "client_key"):
            text = values[key]
            if text is None:
                paths[key] = None
                continue
            if not text:
                raise self.fail("request.tls", key, "expected the path of a PEM file")
            path = Path(text).expanduser()
            path = path if path.is_absolute() else self.base_dir / path
            if not self.lenient and not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "no such file"
                raise self.fail("request.tls", key, f"{path}: {what}")
            paths[key] = path
        if paths["client_key"] is not None and paths["client_cert"] is None:
            raise self.fail("request.tls", "client_key", "needs client_cert (the certificate)")
        return Tls(
            verify=values["verify"],
            ca_bundle=paths["ca_bundle"],
            client_cert=paths["client_cert"],
            client_key=paths["client_key"],
        )

    def proxy(self, value: str | None) -> str | None:
        """``request.proxy``: checked like request.url, with the proxy schemes; the
        message never shows a password written in it."""
        if value is None:
            return None
        self.template("request", "proxy", value)
        template = Template.compile(value)
        if any(kind == "var" for kind, _ in template.parts):
            raise self.fail("request", "proxy", "placeholders have no value here (no node)")
        if self.lenient or template.parts[0][0] == "env":
            return value
        problem = proxy_problem(_filled(value, {}))
        if problem:
            raise self.fail("request", "proxy", f"{_quoted(mask_userinfo(value))} {problem}")
        return value

    def section(
        self, name: str, raw: Any, schema: Mapping[str, Key] | None = None
    ) -> dict[str, Any]:
        schema = SCHEMA[name] if schema is None else schema
        if not isinstance(raw, dict):
            raise self.fail(name, None, "expected a table")
        for key in raw:
            if key not in schema:
                known = ", ".join(schema)
                raise self.fail(name, _key(key), f"unknown key (known keys: {known})")
        out: dict[str, Any] = {}
        for key, spec in schema.items():
            if key in raw:
                out[key] = self.value(name, key, spec, raw[key])
            elif spec.default is _REQUIRED:
                raise self.fail(name, key, f"missing; expected {spec.expected()}")
            else:
                out[key] = spec.default
        return out

    def value(self, section: str, key: str, spec: Key, value: Any) -> Any:
        if spec.kind == "json" and _depth(value) > MAX_JSON_DEPTH:
            raise self.fail(section, key, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if spec.kind == "json" and (bad := _not_json(value)) is not None:
            where, what = bad
            raise self.fail(
                section,
                f"{key}{where}",
                f"expected a JSON value (a string, number, boolean, array or table), {what}",
            )
        if spec.kind == "table" and isinstance(value, dict):
            for sub, item in value.items():
                if not isinstance(item, str):
                    raise self.fail(
                        section, f"{key}.{_key(sub)}", f"expected a string, {got_of(item)}"
                    )
            return MappingProxyType(dict(value))
        converted = _CONVERT[spec.kind](spec, value)
        if converted is _INVALID:
            raise self.fail(section, key, f"expected {spec.expected()}, {got_of(value)}")
        if spec.kind in ("int", "float", "duration"):
            return self.bounded(section, key, spec, converted)
        return converted

    def bounded(self, section: str, key: str, spec: Key, value: float) -> float:
        low = spec.minimum if spec.minimum is not None else -math.inf
        high = spec.maximum if spec.maximum is not None else math.inf
        if not low <= value <= high:
            raise self.fail(section, key, f"expected {spec.expected()}, got {_number(value)}")
        return value

    def source(self, values: dict[str, Any]) -> Source:
        url, file = values["url"], values["file"]
        if (url is None) == (file is None):
            which = "both are set" if url is not None else "neither is set"
            raise self.fail("source", None, f"expected exactly one of url or file; {which}")
        if url is not None:
            self.url("source", "url", url, per_node=False)
            return Source(url=url, file=None)
        path = Path(file)
        if path.suffix.lower() not in SOURCE_SUFFIXES:
            kinds = ", ".join(SOURCE_SUFFIXES)
            raise self.fail("source", "file", f"expected a file ending in {kinds}, got {file!r}")
        return Source(url=None, file=path if path.is_absolute() else self.base_dir / path)

    def request(self, values: dict[str, Any], tls_raw: Any = None) -> Request:
        method = values["method"]
        params, body = values["params"], values["body"]
        if method == "GET" and body is not None:
            raise self.fail("request", "body", "a GET request has no body; use params, or POST")
        if method == "GET" and params is None:
            params = DEFAULT_TEMPLATE
        if method == "POST" and body is None:
            body = DEFAULT_TEMPLATE
        params = params if params is not None else MappingProxyType({})
        self.url("request", "url", values["url"])
        for key, item in params.items():
            self.template("request", f"params.{_key(key)}", item)
        for key, item in values["headers"].items():
            self.header("request", f"headers.{_key(key)}", key, item)
        self.json_templates("request.body", body)
        return Request(
            url=values["url"],
            method=method,
            params=params,
            body=body,
            headers=values["headers"],
            timeout=values["timeout"],
            proxy=self.proxy(values["proxy"]),
            tls=self.tls(tls_raw),
        )

    def url(self, section: str, key: str, value: str, *, per_node: bool = True) -> None:
        """A URL must be usable once its placeholders are filled: http(s), a host, a port
        from 1 to 65535. ``per_node`` False: it is called once, with no node to fill in."""
        self.template(section, key, value)
        if self.lenient:
            return
        template = Template.compile(value)
        placeholders = [text for kind, text in template.parts if kind == "var"]
        if placeholders and not per_node:
            raise self.fail(
                section,
                key,
                f"{{{placeholders[0]}}} has no value here: placeholders are filled per node, "
                "in request.url, params, body and headers",
            )
        if template.parts[0][0] == "env":
            return  # the scheme and host come from the environment: checked at run time
        problem = url_problem(_filled(value, {}))
        if problem:
            raise self.fail(section, key, f"{_quoted(value)} {problem}")

    def header(self, section: str, key: str, name: str, value: str) -> None:
        self.template(section, key, value)
        if self.lenient:
            return
        problem = header_name_problem(name)
        if problem:
            raise self.fail(section, key, problem)
        problem = header_value_problem(value)
        if problem:
            raise self.fail(section, key, f"the value {problem}")

    def json_templates(self, dotted: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                self.json_templates(f"{dotted}.{_key(key)}", item)
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                self.json_templates(f"{dotted}[{index}]", item)
        elif isinstance(value, str):
            section, _, key = dotted.partition(".")
            self.template(section, key, value)

    def template(self, section: str, key: str, value: str) -> None:
        try:
            Template.compile(value)
        except TemplateError as exc:
            raise self.fail(section, key, str(exc)) from None

    def levels(
        self, raw: Any, crawl: Crawl, default_timeout: float, default_attempts: int
    ) -> Mapping[int, Level]:
        if not isinstance(raw, dict):
            raise self.fail("levels", None, "expected tables [levels.1], [levels.2], ...")
        given: dict[int, dict[str, Any]] = {}
        for name, table in raw.items():
            if not (isinstance(name, str) and name.isascii() and name.isdigit()):
                raise self.fail("levels", _key(name), "expected a level number, as in [levels.1]")
            number = int(name) if len(name) <= 9 else None  # no level has more digits
            if number is None or not 1 <= number < crawl.max_depth:
                shown = name if len(name) <= 12 else f"{name[:9]}..."
                raise self.fail(
                    f"levels.{name}",
                    None,
                    f"level {shown} is not queried: expected 1 to {crawl.max_depth - 1} "
                    f"(levels below crawl.max_depth = {crawl.max_depth})",
                )
            given[number] = self.section(f"levels.{name}", table, LEVEL_SCHEMA)
        levels = {}
        for number in range(1, crawl.max_depth):
            values = given.get(number, {"workers": DEFAULT_WORKERS})
            timeout = values.get("timeout") or default_timeout
            attempts = values.get("attempts") or default_attempts
            levels[number] = Level(workers=values["workers"], timeout=timeout, attempts=attempts)
        return MappingProxyType(levels)


_INVALID = object()


def _as_str(spec: Key, value: Any) -> Any:
    if not isinstance(value, str):
        return _INVALID
    if not spec.choices:
        return value
    matches = [choice for choice in spec.choices if choice.lower() == value.lower()]
    return matches[0] if matches else _INVALID


def _as_int(spec: Key, value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID


def _as_float(spec: Key, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _INVALID
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return value  # too large for a float, so out of every range: bounded() says so
    return value if math.isfinite(value) else _INVALID


def _as_bool(spec: Key, value: Any) -> Any:
    return value if isinstance(value, bool) else _INVALID


def _as_statuses(spec: Key, value: Any) -> Any:
    if isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
    ):
        return tuple(value)
    return _INVALID


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _as_duration(spec: Key, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return _as_float(spec, value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) * _UNITS[match.group(2)] if match else _INVALID


def _as_weights(spec: Key, value: Any) -> Any:
    if isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) and -(10**9) <= v <= 10**9
        for v in value.values()
    ):
        return MappingProxyType(dict(value))
    return _INVALID


def _as_json(spec: Key, value: Any) -> Any:
    return _freeze(value) if isinstance(value, dict | list) else _INVALID


_CONVERT: Mapping[str, Callable[[Key, Any], Any]] = {
    "str": _as_str,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "statuses": _as_statuses,
    "json": _as_json,
    "duration": _as_duration,
    "weights": _as_weights,
    "table": lambda spec, value: _INVALID,  # tables are checked key by key above
}


def _not_json(value: Any, where: str = "") -> tuple[str, str] | None:
    """Where a TOML value has something JSON cannot carry (a date, a time, inf or nan, a
    lone surrogate), and what: (".a.0", "got a date"); None if it is all JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _not_json(item, f"{where}.{_key(key)}")
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _not_json(item, f"{where}.{index}")
            if found is not None:
                return found
        return None
    if isinstance(value, bool | int) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"got {value} (not allowed in JSON)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, "got a string with a lone surrogate"
        return None
    return where, f"got a {type(value).__name__}"


def got_of(value: Any) -> str:
    return f"got {_describe(value)}"


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({_quoted(value)})" if len(value) <= 40 else "a string"
    if isinstance(value, int | float):
        return f"a number ({_number(value)})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _number(value: float) -> str:
    """A number as a message shows it: an integer of many digits is not written out."""
    if isinstance(value, int) and abs(value) >= 10**18:
        if value.bit_length() > 14_000:  # past what Python converts to text by default
            return "an integer of thousands of digits"
        return f"an integer of {len(str(abs(value)))} digits"
    return str(value)


def _depth(value: Any) -> int:
    """How deeply tables and arrays nest in ``value`` (counted without recursion), up
    to just past ``MAX_JSON_DEPTH``."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _quoted(text: str) -> str:
    """``text`` in double quotes, control characters escaped (a message stays one line)."""
    return json.dumps(text, ensure_ascii=False)


def _key(name: Any) -> str:
    """A key as TOML writes it in a dotted name: bare if it can be, else quoted."""
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else _quoted(text)


def one_line(text: str) -> str:
    """Control characters and line separators escaped: a message is one line."""
    return "".join(repr(c)[1:-1] if _breaks_line(c) else c for c in text)


def _breaks_line(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _control(text: str, *, tab: bool = False) -> str | None:
    """The first control character in ``text``, escaped (``\\n``), or None."""
    for char in text:
        if _breaks_line(char) and not (tab and char == "\t"):
            return repr(char)[1:-1]
    return None


def _filled(url: str, env: Mapping[str, str]) -> str:
    """``url`` with every placeholder a sample value, and its ``${VAR}``s from ``env``
    (a sample value for those ``env`` lacks)."""
    template = Template.compile(url)
    bound = template.bind_env({**dict.fromkeys(template.env_vars, SAMPLE_VALUE), **env})
    return bound.render(dict.fromkeys(PLACEHOLDERS, SAMPLE_VALUE), quote_segment)


_HTTP_PREFIX = re.compile(r"https?://", re.IGNORECASE)
_HOST = re.compile(r"[\w.~!$&'()*+,;=%-]+")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an HTTP endpoint (completing "<url> ..."), or None.

    >>> url_problem("ftp://x/c")
    'must start with http:// or https://'
    >>> url_problem("http://127.0.0.1:8808/c") is None
    True
    """
    control = _control(url)
    if control:
        return f"holds a control character ({control})"
    if not _HTTP_PREFIX.match(url):
        return "must start with " + " or ".join(f"{scheme}://" for scheme in URL_SCHEMES)
    try:
        netloc = urlsplit(url).netloc
    except ValueError as error:  # an unclosed "[", characters NFKC turns into "/" ...
        return f"is not a valid URL ({error})"
    host, port = _host_and_port(netloc.rpartition("@")[2])
    if not host:
        return "has no host (expected http://host/...)"
    if port is not None and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    ):
        return f"has port {_quoted(port)}: expected a number from 1 to 65535"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1].partition("%")[0])
        except ValueError:
            return f"has an invalid IPv6 address {_quoted(host)}"
    elif not _HOST.fullmatch(host):
        return f"has an invalid host {_quoted(host)}"
    return _httpx_problem(url)


def proxy_problem(url: str) -> str | None:
    """What makes ``url`` unusable as ``request.proxy`` (completing "<url> ..."), or None.

    >>> proxy_problem("ftp://proxy:3128")
    'must start with http://, https://, socks5:// or socks5h://'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in PROXY_SCHEMES:
        return (
            "must start with "
            + ", ".join(f"{s}://" for s in PROXY_SCHEMES[:-1])
            + (f" or {PROXY_SCHEMES[-1]}://")
        )
    problem = url_problem(f"http://{rest}")
    if problem is None and scheme.lower().startswith("socks") and not find_spec("socksio"):
        return "is a SOCKS proxy, which needs the socksio package: pip install 'httpx[socks]'"
    return problem


def mask_userinfo(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part masked.

    >>> mask_userinfo("http://me:s3cret@proxy:3128")
    'http://me:***@proxy:3128'
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.partition("@")
    if not (sep and at) or ":" not in userinfo or "/" in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"


def proxy_secrets(url: str) -> list[str]:
    """The password written in a proxy URL (its percent-decoded form too), if any."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return list(dict.fromkeys([password, unquote(password)]))


def _host_and_port(hostport: str) -> tuple[str, str | None]:
    """``host[:port]`` or ``[v6]:port`` split; the port is None when absent or empty."""
    if hostport.startswith("["):
        inner, _, rest = hostport.partition("]")
        host, port = inner + "]", rest[1:] if rest.startswith(":") else rest or None
        return host, port or None
    host, _, port = hostport.partition(":")
    return host, port or None


def _httpx_problem(url: str) -> str | None:
    """What httpx itself refuses in ``url`` (the URL it will be given at run time)."""
    import httpx  # the client's own parser; imported only to check a job that will run

    try:
        httpx.URL(url)
    except httpx.InvalidURL as error:
        return f"is not a valid URL ({error})"
    return None


def header_name_problem(name: str) -> str | None:
    """What makes ``name`` unusable as an HTTP header name (RFC 9110 token), or None."""
    if _TOKEN.fullmatch(name):
        return None
    return "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"


def header_value_problem(value: str) -> str | None:
    """What makes ``value`` unsendable as an HTTP header value, or None."""
    if "\r" in value or "\n" in value:
        return "holds a line break (CR or LF): a header is one line"
    control = _control(value, tab=True)
    if control:
        return f"holds a control character ({control})"
    if not value.isascii():
        return "holds a character that is not ASCII (header values are sent as ASCII)"
    return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line number of ``key`` in ``[section]`` (TOML gives none after parsing)."""
    header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    first = key.split(".")[0] if key else None
    assignment = re.compile(r"^\s*" + re.escape(first) + r"\s*=") if first else None
    inside = False
    section_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[", line):
            inside = bool(header.match(line))
            if inside and assignment is None:
                return number
            section_line = section_line or (number if inside else None)
            continue
        if inside and assignment is not None and assignment.match(line):
            return number
    return section_line  # a missing key: point at its section
