"""Templates: placeholders, escapes, secrets bound once, and masking."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumer.job.template import Redactor, Template, TemplateError, quote_query, quote_segment

VALUES = {"id": "A/1 b", "name": "Alpha", "type": "core", "level": "2", "parent_id": "P"}


def test_renders_placeholders_and_keeps_literals() -> None:
    template = Template.compile("{id}-{name}:{level}/{parent_id}")
    assert template.render(VALUES) == "A/1 b-Alpha:2/P"


def test_values_are_never_reinterpreted() -> None:
    assert Template.compile("{name}").render({**VALUES, "name": "{id}"}) == "{id}"


def test_double_braces_are_literal_braces() -> None:
    assert Template.compile("{{x}} {id}").render(VALUES) == "{x} A/1 b"


def test_path_segments_are_percent_encoded() -> None:
    rendered = Template.compile("/features/{id}/children").render(VALUES, quote_segment)
    assert rendered == "/features/A%2F1%20b/children"


def test_environment_variables_are_bound_once() -> None:
    template = Template.compile("Bearer ${TOKEN}")
    assert template.env_vars == ("TOKEN",)
    assert template.bind_env({"TOKEN": "t{id}"}).render(VALUES) == "Bearer t{id}"


@pytest.mark.parametrize("text", ["{nope}", "{id", "id}"])
def test_malformed_templates_are_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        Template.compile(text)


def test_only_placeholder() -> None:
    assert Template.compile("{level}").only_placeholder() == "level"
    assert Template.compile("L{level}").only_placeholder() is None


def test_redactor_masks_raw_and_url_encoded_secrets() -> None:
    redactor = Redactor(["a b&c"])
    assert redactor.redact("x=a+b%26c y=a%20b%26c z=a b&c") == "x=*** y=*** z=***"
    assert not Redactor([])


_TEXT = st.text(st.characters(exclude_categories=["Cs"]))  # any text UTF-8 can encode


@given(_TEXT)
def test_values_are_percent_encoded_exactly_as_urllib_encodes_them(value: str) -> None:
    assert quote_segment(value) == quote(value, safe="")
    assert quote_query(value) == quote_plus(value, safe="")


@pytest.mark.parametrize(
    ("value", "in_path", "in_query"),
    [
        ("特性 一", "%E7%89%B9%E6%80%A7%20%E4%B8%80", "%E7%89%B9%E6%80%A7+%E4%B8%80"),
        ("a/b&c=d+e~_.-", "a%2Fb%26c%3Dd%2Be~_.-", "a%2Fb%26c%3Dd%2Be~_.-"),
    ],
)
def test_a_value_is_one_segment_or_one_query_value(value: str, in_path: str, in_query: str) -> None:
    assert (quote_segment(value), quote_query(value)) == (in_path, in_query)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb"])
def test_a_lone_surrogate_is_refused_as_urllib_refuses_it(value: str) -> None:
    with pytest.raises(UnicodeEncodeError):
        quote(value, safe="")
    for quoting in (quote_segment, quote_query):
        with pytest.raises(UnicodeEncodeError):
            quoting(value)
