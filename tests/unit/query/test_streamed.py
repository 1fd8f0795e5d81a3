"""A big answer's items left in its bytes: the document around them is what ``json`` gives,
the items come one at a time, and what ``json`` refuses is refused."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumer.job.settings import Response
from resumer.model import Streamed
from resumer.query.answers import NOT_JSON, Body
from resumer.query.mapping import Constant, Mapper, MappingError, lookup
from resumer.query.streamed import (
    PIECE,
    LazyItems,
    StreamedItems,
    decoder,
    skeleton,
)

DECODE = decoder(Constant.parse)
RESPONSE = Response(items="items", id="id", name="name", type="type")


PIECES = (1, 2, 3, 7, PIECE)  # bytes decoded at a time: every cut of a token is met


def whole(text: str, path: str, piece: int = PIECE) -> tuple[Any, list[Any]]:
    """The skeleton with its lazy items read out, and those items."""
    document = skeleton(text.encode(), path, DECODE, piece)
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
        '{"data": {"items": [-1.5e-3, 12, true, "\\u540d\\"", "名字", {"k": ["v"]}]}, "n": 120}',
    ],
)
@pytest.mark.parametrize("piece", PIECES)
def test_the_document_around_the_items_is_what_json_gives(text: str, piece: int) -> None:
    document, items = whole(text, "data.items", piece)
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
    assert skeleton(b'{"data": {"items": null}}', "data.items", DECODE) == {"data": {"items": None}}
    assert skeleton(b'{"data": [{"items": [1]}]}', "data.items", DECODE) == {
        "data": [{"items": [1]}]
    }
    assert skeleton(b'{"other": 1}', "data.items", DECODE) == {"other": 1}


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
        '{"data": {"items": [1, tru]}}',
        '{"data": {"items": [1, "open]}}',
        '{"data": {"items": [1, 2',
        "",
    ],
)
@pytest.mark.parametrize("piece", PIECES)
def test_what_json_refuses_is_refused(text: str, piece: int) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        skeleton(text.encode(), "data.items", DECODE, piece)
    assert Body(text.encode(), streams="data.items").document is NOT_JSON


def test_a_body_told_to_stream_decodes_its_encoding_as_json_does() -> None:
    text = '{"items": [{"id": "名"}]}'
    for content in (text.encode(), b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        items = lookup(Body(content, streams="items").document, "items")
        assert isinstance(items, LazyItems) and list(items.iter_items()) == [{"id": "名"}]


def test_streamed_items_are_mapped_when_read_and_again_each_time() -> None:
    text = json.dumps({"items": [{"id": f"A.{n}", "name": "名", "type": "t"} for n in range(5)]})
    mapped = Mapper(RESPONSE).items(skeleton(text.encode(), "items", DECODE, 5))
    assert isinstance(mapped, StreamedItems) and isinstance(mapped, Streamed)
    assert len(mapped) == 5 and mapped.waits == 5
    first, again = list(mapped), list(mapped)
    assert first == again and [item.id for item in first] == [f"A.{n}" for n in range(5)]
    assert json.loads(first[0].payload) == {"id": "A.0", "name": "名", "type": "t"}


def test_an_item_that_does_not_map_fails_the_page_when_it_is_read() -> None:
    text = '{"items": [{"id": "a"}, {"name": "no id"}]}'
    with pytest.raises(MappingError, match="item 1 has no usable id"):
        Mapper(RESPONSE).items(skeleton(text.encode(), "items", DECODE))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    items=st.lists(_VALUES, max_size=6),
    before=st.dictionaries(st.text(max_size=4), _VALUES, max_size=3),
    after=st.dictionaries(st.text(max_size=4), _VALUES, max_size=3),
    piece=st.integers(min_value=1, max_value=12),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_fuzz_any_document_read_a_few_bytes_at_a_time_is_what_json_gives(
    items: list[Any],
    before: dict[str, Any],
    after: dict[str, Any],
    piece: int,
    ascii_only: bool,
    indent: int | None,
) -> None:
    """Wherever the pieces cut a token (a number's digits, a character's bytes, an
    escape), the items and the document around them are what ``json`` reads."""
    document = {**before, "data": {**after, "items": items}}
    text = json.dumps(document, ensure_ascii=ascii_only, indent=indent)
    got, read = whole(text, "data.items", piece)
    expected = json.loads(text)
    assert read == expected["data"].pop("items")
    got["data"].pop("items")
    assert got == expected


def test_a_big_body_is_never_held_as_text_beside_its_bytes() -> None:
    """Reading the document and its items twice holds a window of the text, not the
    text: under a fifth of the body's size, where a whole decode takes all of it."""
    items = [{"id": f"A.{n}", "name": f"名字 {n}", "type": "t"} for n in range(40_000)]
    content = json.dumps({"code": 0, "data": {"items": items}}, ensure_ascii=False).encode()
    del items
    tracemalloc.start()
    try:
        document = skeleton(content, "data.items", DECODE, piece=16 << 10)
        found = lookup(document, "data.items")
        assert isinstance(found, LazyItems) and found.size == 40_000
        assert sum(1 for _ in found.iter_items()) == 40_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(content) > 2 << 20 and peak < len(content) / 5
