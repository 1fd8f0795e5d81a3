"""The job file read: TOML text checked against the declared keys (``keys``) and
turned into the frozen ``settings.Job``; and a job built in code the same way.

``load_job`` reads a file, ``parse_job`` text, ``job_from_dict`` tables (written
as TOML first, so the checkpoint stores what was validated). Every mistake is a
one-line ``ConfigError`` naming the file, the line when it can be found, the
key and what was expected.

This module reads no database and makes no HTTP call; it declares no key and
no default (``keys``, ``settings``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from resumer.errors import ConfigError
from resumer.job.keys import (
    AUTH_KEYS,
    AUTH_REQUIRED,
    AUTH_SCHEMA,
    AUTH_SECRETS,
    INVALID,
    ITEM_RULE_KINDS,
    ITEM_RULE_SCHEMA,
    KINDS,
    LEVEL_REQUEST_KEYS,
    LEVEL_RESPONSE_KEYS,
    LEVEL_RESPONSE_TABLES,
    LEVEL_SCHEMA,
    MAX_JSON_DEPTH,
    PAGINATION_KEYS,
    PAGINATION_SCHEMA,
    REQUIRED,
    RULE_SCHEMA,
    RULE_TESTS,
    SCHEMA,
    TLS_SCHEMA,
    Key,
    json_depth,
    not_json,
)
from resumer.job.messages import (
    dotted_key,
    got_of,
    line_of,
    number_text,
    one_line,
    quoted,
    rule_line,
)
from resumer.job.settings import (
    DEFAULT_TEMPLATE,
    DEFAULT_WORKERS,
    AlertSettings,
    AuthSettings,
    Backup,
    Breaker,
    Condition,
    Crawl,
    ItemRule,
    Job,
    Level,
    MetricsSettings,
    Pagination,
    Priority,
    Rate,
    Request,
    Response,
    Retry,
    Rule,
    Source,
    Tls,
)
from resumer.job.template import Template, TemplateError
from resumer.job.tomlwriter import to_toml
from resumer.job.wire import (
    header_name_problem,
    header_value_problem,
    mask_userinfo,
    proxy_problem,
    url_problem,
    with_samples,
)

MAX_JOB_FILE = 10_000_000  # characters: a job file is read whole, so it is bounded
SOURCE_SUFFIXES = (".csv", ".json", ".jsonl")
BUILT_IN_CODE = "<job built in code>"  # the origin of a job_from_dict job, in messages


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
        line = line_of(self.text, section, key)
        where = f"{self.origin}:{line}" if line else self.origin
        return ConfigError(one_line(f"{where}: {dotted}: {message}"))

    def job(self, raw: dict[str, Any]) -> Job:
        for name in raw:
            if name not in SCHEMA and name not in ("levels", "auth"):
                known = ", ".join(f"[{s}]" for s in [*SCHEMA, "levels.N", "auth"])
                line = line_of(self.text, name, None)
                where = f"{self.origin}:{line}" if line else self.origin
                raise ConfigError(
                    one_line(f"{where}: unknown section [{dotted_key(name)}] (known: {known})")
                )
        tls_raw = None
        if isinstance(raw.get("request"), dict) and "tls" in raw["request"]:
            # [request.tls] is a table of its own inside [request].
            request_raw = dict(raw["request"])
            tls_raw = request_raw.pop("tls")
            raw = {**raw, "request": request_raw}
        pagination_raw = rules_raw = None
        if isinstance(raw.get("response"), dict):
            # [response.pagination] and [[response.rule]] are tables of their own.
            response_raw = dict(raw["response"])
            pagination_raw = response_raw.pop("pagination", None)
            rules_raw = response_raw.pop("rule", None)
            raw = {**raw, "response": response_raw}
        shape_raw: dict[str, Any] = {}
        if isinstance(raw.get("crawl"), dict):
            # [[crawl.leaf]] and [[crawl.drop]] are tables of their own.
            crawl_raw = dict(raw["crawl"])
            shape_raw = {kind: crawl_raw.pop(kind) for kind in ITEM_RULE_KINDS if kind in crawl_raw}
            raw = {**raw, "crawl": crawl_raw}
        values = {name: self.section(name, raw.get(name, {})) for name in SCHEMA}
        crawl = self.crawl(values["crawl"], shape_raw)
        request = self.request(values["request"], tls_raw)
        response = Response(
            **values["response"],
            pagination=self.pagination(pagination_raw),
            rules=self.rules(rules_raw),
        )
        retry = Retry(**{**values["retry"], "retry_on": frozenset(values["retry"]["retry_on"])})
        return Job(
            text=self.text,
            origin=self.origin,
            base_dir=self.base_dir,
            source=self.source(values["source"]),
            request=request,
            response=response,
            crawl=crawl,
            levels=self.levels(raw.get("levels", {}), crawl, request, response, retry.attempts),
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
        self.keys_of_choice("auth", raw, ("type", kind), AUTH_KEYS)
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

    def keys_of_choice(
        self,
        section: str,
        raw: Mapping[str, Any],
        chosen: tuple[str, str],
        keys_of: Mapping[str, Any],
    ) -> None:
        """A section whose choice key (``type``, ``mode``), set to a value, picks which other
        keys it may have (``keys_of[value]``): another value's key is refused, naming both."""
        choice, value = chosen
        for key in raw:
            if key != choice and key not in keys_of[value]:
                owner = next(v for v, keys in keys_of.items() if key in keys)
                mine = ", ".join(keys_of[value]) or f"none besides {choice}"
                raise self.fail(
                    section,
                    key,
                    f'is for {choice} = "{owner}", not "{value}" (the keys of "{value}": {mine})',
                )

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

    def crawl(self, values: dict[str, Any], shape_raw: Mapping[str, Any]) -> Crawl:
        max_depth = values["max_depth"]
        crawl = Crawl(
            **values,
            leaf=self.item_rules("leaf", shape_raw.get("leaf"), max_depth),
            drop=self.item_rules("drop", shape_raw.get("drop"), max_depth),
        )
        if crawl.min_concurrency > crawl.http_concurrency:
            raise self.fail(
                "crawl",
                "min_concurrency",
                f"expected at most crawl.http_concurrency ({crawl.http_concurrency}), "
                f"got {crawl.min_concurrency}",
            )
        return crawl

    def item_rules(self, kind: str, raw: Any, max_depth: int) -> tuple[ItemRule, ...]:
        """``[[crawl.leaf]]`` / ``[[crawl.drop]]``: a field with exactly one of in / not_in
        / missing, and optionally the items' levels (a leaf rule: above the leaf level)."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail("crawl", kind, f"expected [[crawl.{kind}]] tables")
        rules = []
        for number, table in enumerate(raw, start=1):
            fail = self.array_fail(f"crawl.{kind}", number)
            values = self.table(fail, table, ITEM_RULE_SCHEMA)
            condition = self.condition(fail, table, values)
            assert condition is not None  # field is required
            levels = values["level"] or frozenset()
            last = max_depth - 1 if kind == "leaf" else max_depth
            beyond = sorted(level for level in levels if level > last)
            if beyond and kind == "leaf":
                raise fail(
                    "level",
                    f"level {beyond[0]} is crawl.max_depth or below it: its items are leaves "
                    f"already (expected 1 to {last})",
                )
            if beyond:
                raise fail(
                    "level", f"no item has level {beyond[0]} (crawl.max_depth = {max_depth})"
                )
            rules.append(ItemRule(number, condition, levels))
        return tuple(rules)

    def array_fail(self, table: str, number: int) -> Callable[[str | None, str], ConfigError]:
        """How a table of an array (``[[table]]``, the ``number``-th) words its errors:
        the file and the table's line, ``table number: key: message``."""
        line = rule_line(self.text, number, table)
        at = f"{self.origin}:{line}" if line else self.origin

        def fail(key: str | None, message: str) -> ConfigError:
            named = f"{table} {number}: {key}" if key else f"{table} {number}"
            return ConfigError(one_line(f"{at}: {named}: {message}"))

        return fail

    def pagination(self, raw: Any, section: str = "response.pagination") -> Pagination | None:
        if raw is None:
            return None
        values = self.section(section, raw, PAGINATION_SCHEMA)
        mode = values["mode"]
        self.keys_of_choice(section, raw, ("mode", mode), PAGINATION_KEYS)
        for key in ("page_param", "cursor_path", "cursor_param", *PAGINATION_KEYS[mode]):
            if values[key] == "" and key != "size_param":  # size_param "": the size is not sent
                raise self.fail(section, key, "expected a non-empty string")
        return Pagination(**values)

    def rules(self, raw: Any, section: str = "response") -> tuple[Rule, ...]:
        """``[[response.rule]]``: each with a condition and one ``then``; a field with
        exactly one of in / not_in / missing; ``wait`` only to retry or throttle."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(section, "rule", f"expected [[{section}.rule]] tables")
        return tuple(
            self.rule(number, table, f"{section}.rule") for number, table in enumerate(raw, start=1)
        )

    def rule(self, number: int, raw: Any, table: str = "response.rule") -> Rule:
        fail = self.array_fail(table, number)

        values = self.table(fail, raw, RULE_SCHEMA)
        condition = self.condition(fail, raw, values)
        if not ("status" in raw or condition is not None or "contains" in raw):
            raise fail(
                None, "no condition: give status, field (with in / not_in / missing) or contains"
            )
        if values["status"] == ():
            raise fail("status", "expected at least one HTTP status")
        if values["contains"] == "":
            raise fail("contains", "expected a non-empty string")
        if values["wait"] is not None and values["then"] not in ("retry", "throttle"):
            raise fail("wait", f'only with then = "retry" or "throttle", not "{values["then"]}"')
        return Rule(
            number=number,
            then=values["then"],
            status=frozenset(values["status"] or ()),
            condition=condition,
            contains=values["contains"],
            wait=values["wait"],
        )

    def table(
        self, fail: Callable[[str | None, str], ConfigError], raw: Any, schema: Mapping[str, Key]
    ) -> dict[str, Any]:
        """A table of an array (``[[response.rule]]``): its keys checked and converted;
        ``fail`` names the table and its line."""
        if not isinstance(raw, dict):
            raise fail(None, "expected a table")
        for key in raw:
            if key not in schema:
                raise fail(dotted_key(key), f"unknown key (known keys: {', '.join(schema)})")
        values: dict[str, Any] = {}
        for key, spec in schema.items():
            if key not in raw:
                if spec.default is REQUIRED:
                    raise fail(key, f"missing; expected {spec.expected()}")
                values[key] = spec.default
                continue
            values[key] = KINDS[spec.kind].convert(spec, raw[key])
            if values[key] is INVALID:
                raise fail(key, f"expected {spec.expected()}, {got_of(raw[key])}")
        return values

    def condition(
        self,
        fail: Callable[[str | None, str], ConfigError],
        raw: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> Condition | None:
        """``field`` with exactly one of ``in`` / ``not_in`` / ``missing``, or neither."""
        tests = [key for key in RULE_TESTS if key in raw]
        if len(tests) > 1:
            raise fail(None, f"{' and '.join(tests)} together: a field has one test")
        if tests and "field" not in raw:
            raise fail(tests[0], "needs field (the dotted path it tests)")
        if "field" not in raw:
            return None
        if not tests:
            raise fail("field", "needs one of in, not_in or missing")
        if tests[0] == "missing":
            return Condition(values["field"], "missing" if values["missing"] else "present")
        return Condition(values["field"], tests[0], values[tests[0]])

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

    def proxy(self, value: str | None, engine: str) -> str | None:
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
        problem = proxy_problem(with_samples(value, {}), engine)
        if problem:
            raise self.fail("request", "proxy", f"{quoted(mask_userinfo(value))} {problem}")
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
                raise self.fail(name, dotted_key(key), f"unknown key (known keys: {known})")
        out: dict[str, Any] = {}
        for key, spec in schema.items():
            if key in raw:
                out[key] = self.value(name, key, spec, raw[key])
            elif spec.default is REQUIRED:
                raise self.fail(name, key, f"missing; expected {spec.expected()}")
            else:
                out[key] = spec.default
        return out

    def value(self, section: str, key: str, spec: Key, value: Any) -> Any:
        if spec.kind == "json" and json_depth(value) > MAX_JSON_DEPTH:
            raise self.fail(section, key, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if spec.kind == "json" and (bad := not_json(value)) is not None:
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
                        section, f"{key}.{dotted_key(sub)}", f"expected a string, {got_of(item)}"
                    )
            return MappingProxyType(dict(value))
        converted = KINDS[spec.kind].convert(spec, value)
        if converted is INVALID:
            raise self.fail(section, key, f"expected {spec.expected()}, {got_of(value)}")
        if KINDS[spec.kind].bounded:
            return self.bounded(section, key, spec, converted)
        return converted

    def bounded(self, section: str, key: str, spec: Key, value: float) -> float:
        low = spec.minimum if spec.minimum is not None else -math.inf
        high = spec.maximum if spec.maximum is not None else math.inf
        if not low <= value <= high:
            raise self.fail(section, key, f"expected {spec.expected()}, got {number_text(value)}")
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
        built = self.built_request(
            "request",
            values,
            proxy=self.proxy(values["proxy"], values["engine"]),
            tls=self.tls(tls_raw),
        )
        return dataclasses.replace(built, engine=values["engine"])

    def built_request(
        self, section: str, values: Mapping[str, Any], *, proxy: str | None, tls: Tls
    ) -> Request:
        """A ``Request`` from checked values: the method's defaults for params and body."""
        method = values["method"]
        params, body = values["params"], values["body"]
        if method == "GET" and body is not None:
            raise self.fail(section, "body", "a GET request has no body; use params, or POST")
        if method == "GET" and params is None:
            params = DEFAULT_TEMPLATE
        if method == "POST" and body is None:
            body = DEFAULT_TEMPLATE
        params = params if params is not None else MappingProxyType({})
        self.url(section, "url", values["url"])
        for key, item in params.items():
            self.template(section, f"params.{dotted_key(key)}", item)
        for key, item in values["headers"].items():
            self.header(section, f"headers.{dotted_key(key)}", key, item)
        self.json_templates(section, "body", body)
        return Request(
            url=values["url"],
            method=method,
            params=params,
            body=body,
            headers=values["headers"],
            timeout=values["timeout"],
            max_body=values["max_body"],
            proxy=proxy,
            tls=tls,
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
        problem = url_problem(with_samples(value, {}))
        if problem:
            raise self.fail(section, key, f"{quoted(value)} {problem}")

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

    def json_templates(self, section: str, key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                self.json_templates(section, f"{key}.{dotted_key(name)}", item)
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                self.json_templates(section, f"{key}[{index}]", item)
        elif isinstance(value, str):
            self.template(section, key, value)

    def template(self, section: str, key: str, value: str) -> None:
        try:
            Template.compile(value)
        except TemplateError as exc:
            raise self.fail(section, key, str(exc)) from None

    def levels(
        self, raw: Any, crawl: Crawl, request: Request, response: Response, attempts: int
    ) -> Mapping[int, Level]:
        if not isinstance(raw, dict):
            raise self.fail("levels", None, "expected tables [levels.1], [levels.2], ...")
        given: dict[int, dict[str, Any]] = {}
        for name, table in raw.items():
            if not (isinstance(name, str) and name.isascii() and name.isdigit()):
                raise self.fail(
                    "levels", dotted_key(name), "expected a level number, as in [levels.1]"
                )
            number = int(name) if len(name) <= 9 else None  # no level has more digits
            if number is None or not 1 <= number < crawl.max_depth:
                shown = name if len(name) <= 12 else f"{name[:9]}..."
                raise self.fail(
                    f"levels.{name}",
                    None,
                    f"level {shown} is not queried: expected 1 to {crawl.max_depth - 1} "
                    f"(levels below crawl.max_depth = {crawl.max_depth})",
                )
            own = dict(table) if isinstance(table, dict) else table
            requested = own.pop("request", None) if isinstance(own, dict) else None
            answered = own.pop("response", None) if isinstance(own, dict) else None
            given[number] = self.section(f"levels.{name}", own, LEVEL_SCHEMA)
            given[number]["request"] = self.level_request(f"levels.{name}", requested, request)
            given[number]["response"] = self.level_response(f"levels.{name}", answered, response)
        levels = {}
        for number in range(1, crawl.max_depth):
            values = given.get(number, {"workers": DEFAULT_WORKERS})
            levels[number] = Level(
                workers=values["workers"],
                timeout=values.get("timeout") or request.timeout,
                attempts=values.get("attempts") or attempts,
                max_body=values.get("max_body") or request.max_body,
                request=values.get("request"),
                response=values.get("response"),
            )
        return MappingProxyType(levels)

    def level_request(self, level: str, raw: Any, top: Request) -> Request | None:
        """``[levels.N.request]``: ``[request]`` with the level's keys. A header given
        replaces that header; any other key replaces the top-level value whole. A level
        that changes ``method`` inherits neither ``params`` nor ``body`` (the method's
        defaults apply, as at the top)."""
        if raw is None:
            return None
        section = f"{level}.request"
        own = self.overrides(section, raw, LEVEL_REQUEST_KEYS, SCHEMA["request"])
        method = own.get("method", top.method)
        inherited = method == top.method
        values = {
            "url": own.get("url", top.url),
            "method": method,
            "params": own.get("params", top.params if inherited else None),
            "body": own.get("body", top.body if inherited else None),
            "headers": MappingProxyType({**top.headers, **own.get("headers", {})}),
            "timeout": top.timeout,
            "max_body": top.max_body,
        }
        built = self.built_request(section, values, proxy=top.proxy, tls=top.tls)
        return dataclasses.replace(built, engine=top.engine)

    def level_response(self, level: str, raw: Any, top: Response) -> Response | None:
        """``[levels.N.response]``: ``[response]`` with the level's keys; a level's
        ``[pagination]`` or ``[[rule]]`` replaces the top-level ones whole."""
        if raw is None:
            return None
        section = f"{level}.response"
        tables = raw if isinstance(raw, dict) else {}
        keys = {key: value for key, value in tables.items() if key not in LEVEL_RESPONSE_TABLES}
        own = self.overrides(
            section, raw, (*LEVEL_RESPONSE_KEYS, *LEVEL_RESPONSE_TABLES), SCHEMA["response"], keys
        )
        if "pagination" in tables:
            own["pagination"] = self.pagination(tables["pagination"], f"{section}.pagination")
        if "rule" in tables:
            own["rules"] = self.rules(tables["rule"], section)
        return dataclasses.replace(top, **own)

    def overrides(
        self,
        section: str,
        raw: Any,
        allowed: tuple[str, ...],
        schema: Mapping[str, Key],
        keys: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The keys a level's table gives (checked as the top-level section's), and only
        those: what it does not give comes from the top-level section."""
        if not isinstance(raw, dict):
            raise self.fail(section, None, "expected a table")
        for key in raw:
            if key not in allowed:
                known = ", ".join(allowed)
                raise self.fail(
                    section, dotted_key(key), f"unknown key (a level may override: {known})"
                )
        keys = raw if keys is None else keys
        return self.section(section, keys, {key: schema[key] for key in keys})


class StoredJob(Protocol):
    """A job as a checkpoint keeps it (``checkpoint.tables.JobRecord``)."""

    @property
    def text(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def base_dir(self) -> str: ...


def stored_job(record: StoredJob, *, lenient: bool = False) -> Job:
    """The job a checkpoint holds (``Store.job()``); ``lenient`` to read one that an
    earlier resumer accepted (checks added since are not applied: ``parse_job``)."""
    return parse_job(record.text, record.origin, Path(record.base_dir), lenient=lenient)
