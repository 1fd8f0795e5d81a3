"""A big answer's items left in its text: the document around them is what ``json`` gives,
the items come one at a time, and what ``json`` refuses is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumer.job.settings import Response
from resumer.model import Streamed
from resumer.query.answers import NOT_JSON, Body
from resumer.query.mapping import Constant, Mapper, MappingError, lookup
from resumer.query.streamed import LazyItems, StreamedItems, decoder, skeleton

DECODE = decoder(Constant.parse)
RESPONSE = Response(items="items", id="id", name="name", type="type")


def whole(text: str, path: str) -> tuple[Any, list[Any]]:
    """The skeleton with its lazy items read out, and those items."""
    document = skeleton(text, path, DECODE)
    items = lookup(document, path)
    assert isinstance(items, LazyItems) and list(items) == []  # nothing held
    return document, list(items.iter_items())


@pytest.mark.parametrize(
    "text",
    [
        '{"data": {"items": [{"id": "a"}, {"id": "b", "x": [1, {"y": null}]}]}}',
        ' \n{ "code" : 0 ,"msg":"好","data":{"total":2,"items" : [ {"id":"a"} , 1, "s" ] ,'
        ' "after": {"items": [9]}}, "tail": [true, false] }\t',
        '{"data": {"items": []}, "z": 1}',
        '{"data": {"items": [ ]}}',
        '{"data": {"items": [NaN, 12345678901234567890123]}}',
    ],
)
def test_the_document_around_the_items_is_what_json_gives(text: str) -> None:
    document, items = whole(text, "data.items")
    expected = json.loads(text, parse_constant=Constant.parse)
    assert json.dumps(items) == json.dumps(expected["data"].pop("items"))  # NaN == NaN so
    document["data"].pop("items")
    assert document == expected


def test_the_last_member_of_a_name_wins_as_in_json() -> None:
    text = '{"data": {"items": [1]}, "data": {"items": [2, 3], "k": "v"}}'
    document, items = whole(text, "data.items")
    assert items == [2, 3] and len(lookup(document, "data.items")) == 0
    assert lookup(document, "data.items").size == 2 and document["data"]["k"] == "v"


def test_a_path_that_is_not_an_array_or_not_there_is_decoded_as_usual() -> None:
    assert skeleton('{"data": {"items": null}}', "data.items", DECODE) == {"data": {"items": None}}
    assert skeleton('{"data": [{"items": [1]}]}', "data.items", DECODE) == {
        "data": [{"items": [1]}]
    }
    assert skeleton('{"other": 1}', "data.items", DECODE) == {"other": 1}


@pytest.mark.parametrize(
    "text",
    [
        '{"data": {"items": [1, 2}}',
        '{"data": {"items": [1 2]}}',
        '{"data": {"items": [1]} "x": 2}',
        '{"data" {"items": [1]}}',
        "{data: 1}",
        '{"data": {"items": [1]}} extra',
        '{"data": {"items": [1,]}}',
        "",
    ],
)
def test_what_json_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        skeleton(text, "data.items", DECODE)
    assert Body(text.encode(), streams="data.items").document is NOT_JSON


def test_a_body_told_to_stream_decodes_its_encoding_as_json_does() -> None:
    text = '{"items": [{"id": "名"}]}'
    for content in (text.encode(), b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        items = lookup(Body(content, streams="items").document, "items")
        assert isinstance(items, LazyItems) and list(items.iter_items()) == [{"id": "名"}]


def test_streamed_items_are_mapped_when_read_and_again_each_time() -> None:
    text = json.dumps({"items": [{"id": f"A.{n}", "name": "名", "type": "t"} for n in range(5)]})
    mapped = Mapper(RESPONSE).items(skeleton(text, "items", DECODE))
    assert isinstance(mapped, StreamedItems) and isinstance(mapped, Streamed)
    assert len(mapped) == 5 and mapped.waits == 5
    first, again = list(mapped), list(mapped)
    assert first == again and [item.id for item in first] == [f"A.{n}" for n in range(5)]
    assert json.loads(first[0].payload) == {"id": "A.0", "name": "名", "type": "t"}


def test_an_item_that_does_not_map_fails_the_page_when_it_is_read() -> None:
    text = '{"items": [{"id": "a"}, {"name": "no id"}]}'
    with pytest.raises(MappingError, match="item 1 has no usable id"):
        Mapper(RESPONSE).items(skeleton(text, "items", DECODE))
