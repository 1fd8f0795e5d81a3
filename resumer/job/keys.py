"""Every key a job file may hold, declared once: its kind, default, bounds and help.

``SCHEMA`` (and the tables of [request.tls], [response.pagination], [auth] and
[levels.N]) is what ``loader`` validates with and ``schema`` describes
(JSON Schema, the ``init`` template). ``KINDS`` holds each kind of value once:
how a message names it, how a TOML value becomes a setting, its JSON Schema.

This module declares and converts single values; it reads no file and checks
no section as a whole (``loader`` does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from resumer.job.messages import dotted_key
from resumer.job.settings import (
    AUTH_TYPES,
    DEFAULT_ALERT_WINDOW,
    DEFAULT_ATTEMPTS,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BACKOFF_MULTIPLIER,
    DEFAULT_BACKUPS_KEPT,
    DEFAULT_BURST,
    DEFAULT_ENGINE,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_GRACE,
    DEFAULT_HTTP_CONCURRENCY,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_PAUSE,
    DEFAULT_METHOD,
    DEFAULT_METRICS_HOST,
    DEFAULT_MIN_CONCURRENCY,
    DEFAULT_ORDER,
    DEFAULT_PACING,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RATE,
    DEFAULT_RESET_TIMEOUT,
    DEFAULT_RETRY_ON,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    ENGINES,
    PAGINATION_MODES,
    RULE_OUTCOMES,
)

MAX_DURATION = 365 * 86400.0  # seconds: the longest duration a job file may give
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}  # in seconds
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(DURATION_UNITS) + r")?\s*$")

SIZE_UNITS = {  # bytes: decimal (kB, MB, GB) and binary (KiB, MiB, GiB) units, and B
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
MAX_SIZE = 1024**4  # bytes: the largest size a job file may give (1 TiB)
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")  # "256MiB", "1 GB", "4096"
DOTTED_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")  # "code", "data.retryAfter": no empty part

MAX_JSON_DEPTH = 32  # levels of tables and arrays in a "json" value (request.body)

REQUIRED = object()  # a Key's default when the key must be given
INVALID = object()  # what a kind's conversion gives for a value it does not take


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the job file: its type, default, bounds and help text."""

    kind: str  # a name in KINDS
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def expected(self) -> str:
        """What a value of this key must be, for a message ("an integer from 1 to 64")."""
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        if self.kind == "size":
            return f"{KINDS['size'].noun}, up to 1 TiB"
        noun = KINDS[self.kind].noun
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.minimum is not None:
            return f"{noun} >= {_num(self.minimum)}"
        return noun


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of value a key holds: how a message names it (``noun``), how a TOML
    value becomes a setting (``convert``: ``INVALID`` for a value it does not take),
    whether its value is checked against the key's bounds, and its JSON Schema."""

    noun: str
    convert: Callable[[Key, Any], Any]
    json_schema: Mapping[str, Any]
    bounded: bool = False


def _as_str(spec: Key, value: Any) -> Any:
    if not isinstance(value, str):
        return INVALID
    if not spec.choices:
        return value
    matches = [choice for choice in spec.choices if choice.lower() == value.lower()]
    return matches[0] if matches else INVALID


def _as_int(spec: Key, value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else INVALID


def _as_float(spec: Key, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return INVALID
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return value  # too large for a float, so out of every range: bounded() says so
    return value if math.isfinite(value) else INVALID


def _as_bool(spec: Key, value: Any) -> Any:
    return value if isinstance(value, bool) else INVALID


def _as_statuses(spec: Key, value: Any) -> Any:
    if isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
    ):
        return tuple(value)
    return INVALID


def _as_levels(spec: Key, value: Any) -> Any:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in value)
    ):
        return frozenset(value)
    return INVALID


def _as_scalars(spec: Key, value: Any) -> Any:
    if isinstance(value, list) and value and all(_is_scalar(v) for v in value):
        return tuple(value)
    return INVALID


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _as_path(spec: Key, value: Any) -> Any:
    return value if isinstance(value, str) and DOTTED_PATH.match(value) else INVALID


def _as_duration(spec: Key, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return _as_float(spec, value)
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        return INVALID
    unit = match.group(2)
    return float(match.group(1)) * (DURATION_UNITS[unit] if unit else 1.0)


def _as_size(spec: Key, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = SIZE.match(value) if isinstance(value, str) else None
    unit = SIZE_UNITS.get(match.group(2).lower() or "b") if match else None
    if match is None or unit is None:
        return INVALID
    return int(float(match.group(1)) * unit)


def _as_weights(spec: Key, value: Any) -> Any:
    if isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) and -(10**9) <= v <= 10**9
        for v in value.values()
    ):
        return MappingProxyType(dict(value))
    return INVALID


def _as_json(spec: Key, value: Any) -> Any:
    return _freeze(value) if isinstance(value, dict | list) else INVALID


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


KINDS: Mapping[str, Kind] = {
    "str": Kind("a string", _as_str, {"type": "string"}),
    "int": Kind("an integer", _as_int, {"type": "integer"}, bounded=True),
    "float": Kind("a number", _as_float, {"type": "number"}, bounded=True),
    # A table's values are checked key by key (``loader``): no value converts whole.
    "table": Kind(
        "a table of strings",
        lambda spec, value: INVALID,
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
    "json": Kind("a table", _as_json, {"type": ["object", "array"]}),
    "bool": Kind("true or false", _as_bool, {"type": "boolean"}),
    "statuses": Kind(
        "a list of HTTP statuses (100 to 599)",
        _as_statuses,
        {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}},
    ),
    "duration": Kind(
        'a duration like "90s", "10m", "2h" or a number of seconds',
        _as_duration,
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION.pattern},
            ]
        },
        bounded=True,
    ),
    "scalars": Kind(
        "a non-empty list of strings, numbers or booleans",
        _as_scalars,
        {
            "type": "array",
            "minItems": 1,
            "items": {"type": ["string", "number", "boolean"]},
        },
    ),
    "levels": Kind(
        "a non-empty list of levels (1 to 64)",
        _as_levels,
        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1, "maximum": 64}},
    ),
    "path": Kind(
        'a dotted path like "code" or "data.retryAfter"',
        _as_path,
        {"type": "string", "pattern": r"^[^.\s]+(\.[^.\s]+)*$"},
    ),
    "size": Kind(
        'a size: bytes (an integer >= 1), or like "256MiB", "64MB", "1GiB"',
        _as_size,
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": SIZE.pattern},
            ]
        },
        bounded=True,
    ),
    "weights": Kind(
        "a table of integer weights",
        _as_weights,
        {"type": "object", "additionalProperties": {"type": "integer"}},
    ),
}

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
        "max_body": Key(
            "size",
            DEFAULT_MAX_BODY,
            minimum=1,
            maximum=MAX_SIZE,
            help='the largest answer body read: bytes, or "256MiB", "1GB"',
        ),
        "proxy": Key(
            "str", None, help="proxy URL for every call; default: HTTP(S)_PROXY / NO_PROXY"
        ),
        "engine": Key(
            "str",
            DEFAULT_ENGINE,
            choices=ENGINES,
            help="what makes the HTTP calls: libcurl (pycurl) or httpx; same meaning of every key",
        ),
    },
    "response": {
        "items": Key("str", "", help='dotted path to the list of items; "" = the body'),
        "id": Key("str", "id", help="dotted path to an item's id"),
        "name": Key("str", "name", help="dotted path to an item's name"),
        "type": Key("str", "type", help="dotted path to an item's type"),
        "message": Key(
            "path", None, help="dotted path to the API's own error text (shown with errors)"
        ),
    },
    "crawl": {
        "max_depth": Key("int", DEFAULT_MAX_DEPTH, minimum=1, maximum=64, help="the leaf level"),
        "http_concurrency": Key("int", DEFAULT_HTTP_CONCURRENCY, minimum=1, maximum=1024),
        "grace": Key("float", DEFAULT_GRACE, minimum=0, maximum=3600, help="seconds"),
        "adaptive": Key(
            "bool", False, help="let the in-flight limit float with the server's health"
        ),
        "min_concurrency": Key(
            "int", DEFAULT_MIN_CONCURRENCY, minimum=1, maximum=1024, help="adaptive's floor"
        ),
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
        "per_second": Key(
            "float", DEFAULT_RATE, minimum=0, maximum=1_000_000, help="the ceiling; 0 = none"
        ),
        "burst": Key(
            "int", DEFAULT_BURST, minimum=1, maximum=1_000_000, help="calls allowed at once"
        ),
        "adaptive": Key(
            "bool", DEFAULT_PACING, help="the rate floats with throttles and rate-limit headers"
        ),
        "max_pause": Key(
            "duration",
            DEFAULT_MAX_PAUSE,
            minimum=0,
            maximum=MAX_DURATION,
            help="seconds: the longest wait the API may ask for that the crawl sits out",
        ),
    },
    "priority": {
        "order": Key(
            "str", DEFAULT_ORDER, choices=("depth-first", "breadth-first"), help="levels first"
        ),
        "types": Key("weights", MappingProxyType({}), help="weight per node type"),
        "roots": Key("weights", MappingProxyType({}), help="weight per level-1 id"),
    },
    "alerts": {
        "error_rate": Key("float", 0.0, minimum=0, maximum=1, help="share of calls; 0 = off"),
        "window": Key(
            "duration",
            DEFAULT_ALERT_WINDOW,
            minimum=0,
            maximum=MAX_DURATION,
            help="the error rate's window",
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
        "host": Key("str", DEFAULT_METRICS_HOST, help="address to serve them on"),
    },
    "backup": {
        "every": Key(
            "duration",
            0.0,
            minimum=0,
            maximum=MAX_DURATION,
            help='periodic backups: "10m", "1h", seconds; 0 = none',
        ),
        "keep": Key(
            "int", DEFAULT_BACKUPS_KEPT, minimum=1, maximum=10_000, help="periodic backups kept"
        ),
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

RULE_SCHEMA: Mapping[str, Key] = {
    "status": Key("statuses", None, help="condition: the HTTP status is one of these"),
    "field": Key("path", None, help="condition: a dotted path in the JSON body, with one of:"),
    "in": Key("scalars", None, help="  its value is one of these (compared as text)"),
    "not_in": Key("scalars", None, help="  its value is none of these (absent counts as none)"),
    "missing": Key("bool", None, help="  true: absent or null; false: present, not null"),
    "contains": Key("str", None, help="condition: the raw body contains this text"),
    "then": Key("str", choices=RULE_OUTCOMES, help="what the answer means"),
    "wait": Key("path", None, help="retry, throttle: dotted path to the seconds to wait"),
}
RULE_TESTS = ("in", "not_in", "missing")  # a field's test: exactly one of these

# [[crawl.leaf]] and [[crawl.drop]]: a condition on an item, and the items' levels.
ITEM_RULE_SCHEMA: Mapping[str, Key] = {
    "field": Key("path", help="a dotted path in the item, with one of:"),
    "in": RULE_SCHEMA["in"],
    "not_in": RULE_SCHEMA["not_in"],
    "missing": RULE_SCHEMA["missing"],
    "level": Key("levels", None, help="only items of these levels (default: every level)"),
}
ITEM_RULE_KINDS = ("leaf", "drop")  # the arrays of [crawl] that hold them

TLS_SCHEMA: Mapping[str, Key] = {
    "verify": Key("bool", True, help="false: no certificate check (a WARNING at start)"),
    "ca_bundle": Key("str", None, help="CA certificates (PEM) to trust instead of the system's"),
    "client_cert": Key("str", None, help="mutual TLS: the client certificate (PEM)"),
    "client_key": Key("str", None, help="its private key (PEM), unless client_cert holds it"),
}

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
    "max_body": Key("size", None, minimum=1, maximum=MAX_SIZE, help="overrides request.max_body"),
}
# [levels.N.request] and [levels.N.response]: the keys of [request] and [response] a level
# may override (and response's [pagination] and [[rule]] tables).
LEVEL_REQUEST_KEYS = ("url", "method", "params", "body", "headers")
LEVEL_RESPONSE_KEYS = ("items", "id", "name", "type", "message")
LEVEL_RESPONSE_TABLES = ("pagination", "rule")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def not_json(value: Any, where: str = "") -> tuple[str, str] | None:
    """Where a TOML value has something JSON cannot carry (a date, a time, inf or nan, a
    lone surrogate), and what: (".a.0", "got a date"); None if it is all JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = not_json(item, f"{where}.{dotted_key(key)}")
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = not_json(item, f"{where}.{index}")
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


def json_depth(value: Any) -> int:
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
