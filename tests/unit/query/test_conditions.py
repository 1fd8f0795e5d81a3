"""``query.conditions``: a field's test of a JSON document, values compared as text.

One implementation for every condition word: ``in``, ``not_in`` (absent counts as
none of them), ``missing`` (absent or null) and its negation ``present``.
"""

from __future__ import annotations

from typing import Any

import pytest

from resumer.job.settings import Condition
from resumer.query.conditions import FieldTest


def holds(test: str, values: tuple[Any, ...], document: Any, field: str = "code") -> bool:
    return FieldTest(Condition(field, test, values)).holds(document)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    [
        ((0,), 0, True),
        ((0,), "0", True),  # a number in the rule matches its text in the body
        (("0",), 0, True),  # and the other way round
        ((True,), True, True),
        ((True,), "true", True),
        ((500, 503), 503, True),
        ((500, 503), 504, False),
        ((0,), False, False),  # false is "false", not "0"
        (("成功",), "成功", True),
        ((1.5,), 1.5, True),
        ((0,), [0], False),  # a list is never one of the values
        ((0,), {"a": 0}, False),
    ],
)
def test_in_compares_values_as_text(values: tuple[Any, ...], value: Any, expected: bool) -> None:
    assert holds("in", values, {"code": value}) is expected


def test_not_in_holds_for_any_other_value_and_for_an_absent_or_null_field() -> None:
    assert holds("not_in", (0,), {"code": 500})
    assert not holds("not_in", (0,), {"code": "0"})
    assert holds("not_in", (0,), {})
    assert holds("not_in", (0,), {"code": None})


def test_in_never_holds_for_an_absent_or_null_field() -> None:
    assert not holds("in", ("null",), {"code": None})
    assert not holds("in", ("",), {})


@pytest.mark.parametrize(
    ("document", "missing"),
    [
        ({"data": None}, True),
        ({}, True),
        ({"data": {}}, False),
        ({"data": []}, False),
        ({"data": 0}, False),
        ("not a table", True),
    ],
)
def test_missing_and_present_read_a_null_as_absent(document: Any, missing: bool) -> None:
    assert holds("missing", (), document, field="data") is missing
    assert holds("present", (), document, field="data") is not missing


def test_a_dotted_path_reaches_into_tables_and_lists() -> None:
    document = {"data": {"list": [{"code": 7}]}}
    assert holds("in", (7,), document, field="data.list.0.code")
    assert holds("missing", (), document, field="data.list.1.code")
    assert holds("missing", (), document, field="data.list.x")
