"""The job file described for machines and people, from the one ``keys.SCHEMA``.

``json_schema()`` is a JSON Schema (draft 2020-12) for editors (Taplo / Even
Better TOML) and scripts; ``template()`` is the commented job file that
``resumer init`` writes, every section with its defaults. Both are generated
from the same declarations the loader validates with, so they cannot drift.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from resumer.job.keys import (
    AUTH_KEYS,
    AUTH_REQUIRED,
    AUTH_SCHEMA,
    ITEM_RULE_SCHEMA,
    KINDS,
    LEVEL_REQUEST_KEYS,
    LEVEL_RESPONSE_KEYS,
    LEVEL_SCHEMA,
    PAGINATION_KEYS,
    PAGINATION_SCHEMA,
    REQUIRED,
    RULE_SCHEMA,
    RULE_TESTS,
    SCHEMA,
    TLS_SCHEMA,
    Key,
)
from resumer.job.tomlwriter import toml_value

SCHEMA_ID = "https://resumer.invalid/job.schema.json"


def _property(key: Key) -> dict[str, Any]:
    schema: dict[str, Any] = copy.deepcopy(dict(KINDS[key.kind].json_schema))
    if key.choices:
        # The loader takes any case; the schema lists the spellings it documents.
        schema["enum"] = list(key.choices)
    numeric = schema.get("type") in ("integer", "number")  # a duration's bounds: the loader's
    if key.minimum is not None and numeric:
        schema["minimum"] = key.minimum
    if key.maximum is not None and numeric:
        schema["maximum"] = key.maximum
    if key.help:
        schema["description"] = key.help
    if key.default is not REQUIRED and key.default is not None:
        schema["default"] = _plain(key.default)
    return schema


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _section(keys: Mapping[str, Key]) -> dict[str, Any]:
    required = [name for name, key in keys.items() if key.default is REQUIRED]
    section: dict[str, Any] = {
        "type": "object",
        "properties": {name: _property(key) for name, key in keys.items()},
        "additionalProperties": False,
    }
    if required:
        section["required"] = required
    return section


def _auth() -> dict[str, Any]:
    """[auth]: each type's keys only, its required ones (``keys.AUTH_KEYS``); bearer
    takes token or token_command."""
    section = _section(AUTH_SCHEMA)
    section["allOf"] = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {
                "propertyNames": {"enum": ["type", *keys]},
                **({"required": list(AUTH_REQUIRED[kind])} if AUTH_REQUIRED[kind] else {}),
                **(
                    {"oneOf": [{"required": ["token"]}, {"required": ["token_command"]}]}
                    if kind == "bearer"
                    else {}
                ),
            },
        }
        for kind, keys in AUTH_KEYS.items()
    ]
    return section


def _pagination() -> dict[str, Any]:
    """[response.pagination]: each mode's keys only (``keys.PAGINATION_KEYS``)."""
    section = _section(PAGINATION_SCHEMA)
    section["allOf"] = [
        {
            "if": {"properties": {"mode": {"const": mode}}, "required": ["mode"]},
            "then": {"propertyNames": {"enum": ["mode", *keys]}},
        }
        for mode, keys in PAGINATION_KEYS.items()
    ]
    return section


def _rules() -> dict[str, Any]:
    """[[response.rule]]: an array of tables, each with ``then`` and a condition; a field
    with exactly one test, a test only with a field, ``wait`` only to retry or throttle."""
    rule = _section(RULE_SCHEMA)
    rule["anyOf"] = [{"required": [key]} for key in ("status", "field", "contains")]
    rule["dependentRequired"] = {test: ["field"] for test in RULE_TESTS}
    rule["allOf"] = [
        {"if": {"required": ["field"]}, "then": {"oneOf": [{"required": [t]} for t in RULE_TESTS]}},
        {
            "if": {"required": ["wait"]},
            "then": {"properties": {"then": {"enum": ["retry", "throttle"]}}},
        },
    ]
    return {
        "type": "array",
        "description": "[[response.rule]]: tried in order; the first whose conditions all hold"
        " decides what the answer means",
        "items": rule,
    }


def _item_rules(kind: str) -> dict[str, Any]:
    """[[crawl.leaf]] / [[crawl.drop]]: an array of tables, each a field with one test."""
    rule = _section(ITEM_RULE_SCHEMA)
    rule["required"] = ["field"]
    rule["oneOf"] = [{"required": [test]} for test in RULE_TESTS]
    what = "stored as leaves, never queried" if kind == "leaf" else "not stored, nor queried"
    return {
        "type": "array",
        "description": f"[[crawl.{kind}]]: items that match are {what}",
        "items": rule,
    }


def _level() -> dict[str, Any]:
    """[levels.N], with its [request] and [response] overrides (their keys only)."""
    level = _section(LEVEL_SCHEMA)
    request = _section({key: SCHEMA["request"][key] for key in LEVEL_REQUEST_KEYS})
    response = _section({key: SCHEMA["response"][key] for key in LEVEL_RESPONSE_KEYS})
    response["properties"]["pagination"] = _pagination()
    response["properties"]["rule"] = _rules()
    for section in (request, response):
        section.pop("required", None)  # a level gives only what it overrides: what it
        for key in section["properties"].values():  # does not comes from the top, not
            key.pop("default", None)  # from a default
    request["description"] = "overrides of [request] for the queries of this level's nodes"
    response["description"] = "overrides of [response] for the answers about this level's nodes"
    level["properties"]["request"] = request
    level["properties"]["response"] = response
    return level


def json_schema() -> dict[str, Any]:
    """The job file's JSON Schema."""
    properties = {name: _section(keys) for name, keys in SCHEMA.items()}
    properties["response"]["properties"]["pagination"] = _pagination()
    properties["response"]["properties"]["rule"] = _rules()
    properties["request"]["properties"]["tls"] = _section(TLS_SCHEMA)
    properties["crawl"]["properties"]["leaf"] = _item_rules("leaf")
    properties["crawl"]["properties"]["drop"] = _item_rules("drop")
    properties["auth"] = _auth()
    properties["source"]["oneOf"] = [
        {"required": ["url"], "not": {"required": ["file"]}},
        {"required": ["file"], "not": {"required": ["url"]}},
    ]
    properties["levels"] = {
        "type": "object",
        "description": "[levels.N]: settings for querying the nodes of level N",
        "patternProperties": {"^[1-9][0-9]*$": _level()},
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "resumer job file",
        "type": "object",
        "properties": properties,
        "required": ["source", "request"],
        "additionalProperties": False,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


_EXAMPLES = {
    ("source", "url"): '"http://127.0.0.1:8808/features"',
    ("request", "url"): '"http://127.0.0.1:8808/children"',
    ("response", "items"): '"data.items"',
}
_COMMENTED = {
    ("request", "params"): '{ id = "{id}", name = "{name}", type = "{type}" }  # with GET',
    ("request", "body"): '{ id = "{id}", name = "{name}", type = "{type}" }  # with POST',
    ("request", "headers"): '{ Authorization = "Bearer ${FEATURE_API_TOKEN}" }',
    ("response.pagination", "mode"): '"page"  # or "cursor", "link", "offset", "next_url"',
    ("request", "proxy"): '"http://proxy.example:3128"  # default: HTTP(S)_PROXY / NO_PROXY',
    ("request.tls", "ca_bundle"): '"corp-ca.pem"  # default: the system\'s trust store',
    ("request.tls", "client_cert"): '"client.pem"  # mutual TLS',
    ("request.tls", "client_key"): '"client.key"  # unless client_cert holds the key',
    ("source", "file"): '"roots.csv"  # instead of url',
    ("auth", "type"): '"oauth2"  # or "bearer", "basic" (README: Authentication)',
    ("auth", "client_secret"): '"${CLIENT_SECRET}"',
    ("auth", "token"): '"${API_TOKEN}"',
    ("auth", "password"): '"${API_PASSWORD}"',
}


# The rules for the common {"code", "msg", "data"} envelope, commented (README: "When the
# API answers 200 with an error inside"); each key of RULE_SCHEMA appears once at least.
ENVELOPE_RULES = """\
# Rules: what an answer means, for APIs that answer HTTP 200 with an error inside, such as
# {"code": 0, "msg": "成功", "data": {"list": [...]}}. Tried in order, before any item is
# read; the first whose conditions all hold decides; none matching: the HTTP status decides.
# then = "ok" | "empty" | "retry" | "throttle" | "fail" | "renew" | "stop"
# [[response.rule]]
# status = [404]            # a node without children
# then = "empty"
# [[response.rule]]
# field = "code"            # busy: try again (backoff; the breaker counts it)
# in = [500, 503]
# then = "retry"
# [[response.rule]]
# field = "code"            # slow down: the send rate drops; never a failure
# in = [429]
# then = "throttle"
# wait = "data.retryAfter"  # seconds to wait, read from the body
# [[response.rule]]
# status = [200]
# contains = "<html"        # a gateway's HTML error page served with 200
# then = "retry"
# [[response.rule]]
# field = "code"            # any other code: the node fails, with the API's msg
# not_in = [0]
# then = "fail"
# [[response.rule]]
# field = "data"            # code 0 and data: null: no children
# missing = true
# then = "empty"
"""


# The tree shape's rules and a level's own request and response, commented (README:
# "Shaping the crawl"); each key of ITEM_RULE_SCHEMA appears once at least.
SHAPE_RULES = """\
# Tree shape: items that match a leaf rule are stored as leaves (complete, never queried);
# items that match a drop rule are not stored at all. The condition words of the rules.
# [[crawl.leaf]]
# field = "hasChildren"
# in = [false]
# [[crawl.drop]]
# field = "type"
# not_in = ["core", "edge"]  # or: in = [...], missing = true
# level = [2, 3]             # optional: only items of these levels
"""
LEVEL_OVERRIDES = """\
# A level asked and read with other words than [request] and [response]:
# [levels.3.request]         # for the queries OF level-3 nodes: url, method, params, body, headers
# params = { subFeatureId = "{id}" }
# [levels.3.response]        # items, id, name, type, message, [pagination], [[rule]]
# items = "data.children"
# id = "subFeatureId"
"""


def _lines(section: str, keys: Mapping[str, Key]) -> list[str]:
    lines = [f"[{section}]"]
    for name, key in keys.items():
        note = f"  # {key.help}" if key.help else ""
        example = _EXAMPLES.get((section, name))
        commented = _COMMENTED.get((section, name))
        if example is not None:
            lines.append(f"{name} = {example}{note}")
        elif commented is not None:
            lines.append(f"# {name} = {commented}")
        elif key.default is REQUIRED or key.default is None:
            lines.append(f"# {name} = ...{note}")
        else:
            lines.append(f"# {name} = {toml_value(key.default, f'{section}.{name}')}{note}")
    return lines


def template() -> str:
    """A commented job file: required keys set for the fake API, every other key at its
    default, commented out."""
    out = [
        "# A resumer job file. Every commented key shows its default.",
        "# Reference: README.md (Job file reference); check it with `resumer schema`.",
        "",
    ]
    for section, keys in SCHEMA.items():
        out += [*_lines(section, keys), ""]
        if section == "request":
            block = _lines("request.tls", TLS_SCHEMA)
            out += ["# " + line if not line.startswith("#") else line for line in block] + [""]
        if section == "response":
            block = _lines("response.pagination", PAGINATION_SCHEMA)
            out += ["# " + line if not line.startswith("#") else line for line in block] + [""]
            out += [*ENVELOPE_RULES.splitlines(), ""]
        if section == "crawl":
            out += [*SHAPE_RULES.splitlines(), ""]
    out += [*_lines("levels.1", LEVEL_SCHEMA), ""]
    out += [*LEVEL_OVERRIDES.splitlines(), ""]
    block = _lines("auth", AUTH_SCHEMA)
    out += ["# " + line if not line.startswith("#") else line for line in block] + [""]
    return "\n".join(out)
