"""The job file's keys, one value at a time: what a message says a key expects, how each
kind converts a TOML value (or refuses it: a boolean is not a number, a duration takes a
unit), and where a value holds something JSON cannot carry, or how deeply it nests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from resumer.job.keys import INVALID, KINDS, MAX_JSON_DEPTH, Key, json_depth, not_json


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (Key("int", 4, minimum=1, maximum=64), "an integer from 1 to 64"),
        (Key("float", 1.0, minimum=0.5), "a number >= 0.5"),
        (Key("float", 1.0, minimum=0, maximum=2.5), "a number from 0 to 2.5"),
        (Key("str", "GET", choices=("GET", "POST")), 'one of "GET", "POST"'),
        (Key("bool", True), "true or false"),
    ],
)
def test_a_key_says_what_it_expects(key: Key, expected: str) -> None:
    assert key.expected() == expected


def convert(kind: str, value: Any, **key: Any) -> Any:
    return KINDS[kind].convert(Key(kind, **key), value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("2d", 172800.0),
        (" 10 ", 10.0),
        (30, 30.0),
    ],
)
def test_a_duration_is_seconds_with_an_optional_unit(value: Any, seconds: float) -> None:
    assert convert("duration", value) == seconds


@pytest.mark.parametrize("value", ["ten minutes", "5w", "-1s", -1, True, None, [1]])
def test_what_is_not_a_duration_is_refused(value: Any) -> None:
    assert convert("duration", value) is INVALID


def test_a_boolean_is_not_a_number() -> None:
    assert convert("int", 3) == 3
    assert convert("int", True) is INVALID
    assert convert("float", False) is INVALID
    assert convert("float", 2) == 2.0
    assert convert("float", float("nan")) is INVALID


def test_a_choice_is_matched_without_case_and_given_as_declared() -> None:
    assert convert("str", "post", choices=("GET", "POST")) == "POST"
    assert convert("str", "PUT", choices=("GET", "POST")) is INVALID


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"a": [1, {"b": float("inf")}]}, (".a.1.b", "got inf (not allowed in JSON)")),
        ({"when": dt.date(2024, 1, 31)}, (".when", "got a date")),
        ({"x y": [dt.time(1, 2)]}, ('."x y".0', "got a time")),
        ({"s": "\ud800"}, (".s", "got a string with a lone surrogate")),
        ({"a": 1, "b": ["x", None, True, 2.5], "c": {}}, None),
    ],
)
def test_not_json_finds_what_json_cannot_carry(value: Any, found: tuple[str, str] | None) -> None:
    assert not_json(value) == found


def test_json_depth_counts_tables_and_arrays_and_stops_just_past_the_limit() -> None:
    assert json_depth("scalar") == 0
    assert json_depth({"a": [1, {"b": {}}]}) == 4
    nested: list[Any] = []
    for _ in range(1000):
        nested = [nested]
    assert MAX_JSON_DEPTH == 32
    assert json_depth(nested) == 33
