"""Job settings written as TOML text: top-level values first, then one section per table with
inner tables inline, strings escaped so TOML reads them back as written, keys quoted when they
must be, and a value TOML cannot hold refused with a ``ConfigError`` naming its key."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest

from resumer.errors import ConfigError
from resumer.job.tomlwriter import to_toml, toml_value


def test_sections_hold_their_keys_and_inner_tables_are_inline() -> None:
    settings = {
        "request": {"url": "http://h/c", "params": {"id": "{id}", "X Y": "1"}},
        "levels": {"2": {"workers": 3}},
        "crawl": {"adaptive": True, "grace": 2.5},
    }
    assert to_toml(settings) == (
        "[request]\n"
        'url = "http://h/c"\n'
        'params = { id = "{id}", "X Y" = "1" }\n'
        "[levels]\n"
        "2 = { workers = 3 }\n"
        "[crawl]\n"
        "adaptive = true\n"
        "grace = 2.5\n"
    )


def test_top_level_values_come_before_every_section() -> None:
    assert to_toml({"a": {"x": 1}, "b": [1, "two"], "c b": {}}) == (
        'b = [1, "two"]\n[a]\nx = 1\n["c b"]\n'
    )


def test_strings_are_escaped_as_toml_basic_strings() -> None:
    assert toml_value('say "hi"\\\n\t\x7f', "k") == '"say \\"hi\\"\\\\\\u000a\t\\u007f"'


def test_what_is_written_reads_back_as_it_was() -> None:
    settings: dict[str, Any] = {
        "source": {"url": 'http://h/f?a=1&b="2"', "weights": {"F1": -3}},
        "request": {"body": {"ids": ["a\u2028b", "c\x01d"], "nested": {"deep": [1.5, False]}}},
    }
    assert tomllib.loads(to_toml(settings)) == settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"request": {"body": {"x": None}}}, "request.body.x: cannot write None in a job file"),
        ({"a": {"b": "\ud800"}}, "a.b: a string with a lone surrogate is not text"),
        ({"a": {"when": dt.date(2024, 1, 31)}}, "a.when: cannot write date in a job file"),
        ({"a": {"list": [1, object()]}}, "a.list[]: cannot write object in a job file"),
        ({"a": {"x y": {"z": None}}}, 'a."x y".z: cannot write None in a job file'),
    ],
)
def test_a_value_toml_cannot_hold_is_refused_naming_its_key(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        to_toml(settings)
    assert str(caught.value) == message
