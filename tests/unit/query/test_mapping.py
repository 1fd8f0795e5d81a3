"""An answer's body to items (``resumer.query.mapping``): paths, payloads, malformed items."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumer.errors import ResumerError
from resumer.job.settings import Response
from resumer.model import Item
from resumer.query.mapping import Mapper, MappingError


def mapper(**kwargs: str) -> Mapper:
    fields: dict[str, Any] = {"items": "", "id": "id", "name": "name", "type": "type", **kwargs}
    return Mapper(Response(**fields))


def test_mapping_turns_numbers_into_their_json_text_and_keeps_the_payload() -> None:
    (item,) = mapper().items([{"id": 7, "name": "n", "type": 1.5, "extra": [1]}])
    assert item == Item("7", "n", "1.5", '{"id":7,"name":"n","type":1.5,"extra":[1]}')


def test_mapping_follows_dotted_paths() -> None:
    body = {"result": {"list": [{"meta": {"key": "k1"}, "label": "L"}]}}
    (item,) = mapper(items="result.list", id="meta.key", name="label").items(body)
    assert (item.id, item.name, item.type) == ("k1", "L", "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"name": "no id"}], "item 0 has no usable id field 'id'"),
        ([{"id": None}], "item 0 has no usable id field"),
        (["plain"], "item 0 is a string, expected an object"),
        ({"id": 1}, "the body is an object, expected a list"),
    ],
)
def test_malformed_items_are_refused(body: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mapper().items(body)


def test_a_mapping_error_is_a_resumer_error_and_still_a_value_error() -> None:
    assert issubclass(MappingError, ResumerError)
    assert issubclass(MappingError, ValueError)


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"id": 123456789012345678901234567890, "n": 1}]}',  # past 64 bits
        b'{"items": [{"id": "a", "x": NaN, "y": -Infinity}]}',  # Python's json reads these
        b'{"items": [{"id": "a", "x": 1e+100, "y": -0.0, "z": 0.1, "s": "\\u2028\xc3\xa9"}]}',
        b'{"items": [{"id": -9223372036854775809}]}',  # one past the 64-bit floor
    ],
)
def test_a_payload_says_exactly_what_the_api_said(body: bytes) -> None:
    from resumer.query.answers import Body

    (item,) = mapper(items="items").items(Body(body).document)
    exact = json.dumps(json.loads(body)["items"][0], ensure_ascii=False, separators=(",", ":"))
    assert item.payload == exact
