"""How values appear in a job file's messages: on one line whatever they hold, quoted, keys
as TOML writes them in a dotted name, values named by kind (and shown when short), and the
best-effort line of a key in its section."""

from __future__ import annotations

import datetime as dt

import pytest

from resumer.job.messages import (
    describe_value,
    dotted_key,
    got_of,
    line_of,
    number_text,
    one_line,
    quoted,
)


def test_one_line_escapes_control_characters_and_line_separators() -> None:
    assert one_line("a\nb\tc\r\u2028d\u2029e") == "a\\nb\\tc\\r\\u2028d\\u2029e"
    assert one_line("café, 日本") == "café, 日本"  # printable text is left as it is


def test_quoted_puts_text_in_double_quotes_on_one_line() -> None:
    assert quoted('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert quoted("café") == '"café"'


@pytest.mark.parametrize(
    ("key", "written"),
    [("max_depth", "max_depth"), ("X-Api-Key", "X-Api-Key"), ("a b", '"a b"'), (2, "2")],
)
def test_a_key_is_bare_when_it_can_be_and_quoted_otherwise(key: object, written: str) -> None:
    assert dotted_key(key) == written


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (None, "None"),
        (True, "a boolean (true)"),
        ("x\ny", 'a string ("x\\ny")'),
        ("y" * 41, "a string"),
        (3, "a number (3)"),
        (2.5, "a number (2.5)"),
        ({"a": 1}, "a table"),
        ([1], "an array"),
        (dt.date(2024, 1, 31), "date"),
    ],
)
def test_a_value_is_named_by_its_kind_and_shown_when_short(value: object, described: str) -> None:
    assert describe_value(value) == described


def test_got_of_says_what_was_found() -> None:
    assert got_of("many") == 'got a string ("many")'


def test_a_huge_integer_is_not_written_out() -> None:
    assert number_text(12) == "12"
    assert number_text(10**18) == "an integer of 19 digits"
    assert number_text(-(10**20)) == "an integer of 21 digits"
    assert number_text(10**5000) == "an integer of thousands of digits"


JOB = '[source]\nurl = "x"\n\n[request]\nurl = "y"\ntimeout = 3\n[ levels . 2 ]\nworkers = 1\n'


@pytest.mark.parametrize(
    ("section", "key", "line"),
    [
        ("request", "timeout", 6),
        ("request", "url", 5),
        ("source", "url", 2),
        ("request", "missing", 4),  # a missing key: its section's line
        ("request", None, 4),
        ("levels.2", "workers", 8),  # spaces around the dot of a dotted header
        ("crawl", "max_depth", None),  # no such section
    ],
)
def test_line_of_finds_a_key_in_its_section(section: str, key: str | None, line: int) -> None:
    assert line_of(JOB, section, key) == line
