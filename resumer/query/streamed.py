"""One huge answer read without holding it decoded: its items left in the text, read
one at a time as they are mapped, and again as they are stored.

A page of 300,000 items decoded whole is some six times its JSON in Python's
objects, and its mapped ``Item``s five times more. So for a body over
``answers.BIG_BODY``, when nothing but the mapping reads inside the items,
``skeleton`` decodes everything but the items array (the envelope that rules,
messages and ``wait`` read, exactly as ``json`` would) and puts a ``LazyItems``
in its place: the text and where the array starts. ``Mapper`` maps those items
one at a time to check and count them, and hands on ``StreamedItems``, which map
them again, one at a time, when the store inserts them. What the page holds
meanwhile is its text.

No I/O; what ``json`` refuses, this refuses (``ValueError``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

from resumer.model import Item, Streamed

_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between tokens, and all it allows


class LazyItems(list[Any]):
    """An items array left in its text: empty as a list (so that what only looks at the
    document around it sees a list), its items read one at a time by ``iter_items``."""

    def __init__(self, text: str, start: int, size: int, decode: _Decode) -> None:
        super().__init__()
        self.text, self.start, self.size, self.decode = text, start, size, decode

    def iter_items(self) -> Iterator[Any]:
        """Each item decoded, in order, none kept."""
        yield from _elements(self.text, self.start, self.decode)


class StreamedItems(Streamed):
    """A page's mapped items, mapped again from its text as they are read: ``map`` is the
    one that checked them all (so it raises nothing now)."""

    def __init__(self, items: LazyItems, map_one: Callable[[Any, int], Item], waits: int) -> None:
        super().__init__(items.size, waits)
        self._items, self._map = items, map_one

    def __iter__(self) -> Iterator[Item]:
        map_one = self._map
        for index, item in enumerate(self._items.iter_items()):
            yield map_one(item, index)


_Decode = Callable[[str, int], tuple[Any, int]]


def skeleton(text: str, path: str, decode: _Decode) -> Any:
    """The document in ``text`` as ``json.loads`` would give it, but the array at the
    dotted ``path`` (through objects only) a ``LazyItems``; what is not at ``path``, or
    is not an array, decoded as usual. ``decode`` is a ``JSONDecoder.raw_decode``."""
    steps = path.split(".")
    value, end = _value(text, _skip(text, 0), steps, decode)
    if _skip(text, end) != len(text):
        raise ValueError("extra data after the document")
    return value


def _skip(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    assert match is not None  # it matches the empty string anywhere
    return match.end()


def _value(text: str, index: int, steps: list[str], decode: _Decode) -> tuple[Any, int]:
    """The value at ``index`` and where it ends, ``steps`` the path still to follow in it."""
    char = text[index : index + 1]
    if not steps and char == "[":
        elements, count = _elements(text, index, decode), 0
        while True:
            try:
                next(elements)
            except StopIteration as ended:
                return LazyItems(text, index, count, decode), ended.value
            count += 1
    if steps and char == "{":
        return _object(text, index, steps, decode)
    return decode(text, index)


def _object(text: str, index: int, steps: list[str], decode: _Decode) -> tuple[dict[str, Any], int]:
    """An object, the member named ``steps[0]`` followed further: the last of that name
    wins, as in ``json``."""
    members: dict[str, Any] = {}
    index = _skip(text, index + 1)
    if text[index : index + 1] == "}":
        return members, index + 1
    while True:
        if text[index : index + 1] != '"':
            raise ValueError(f"expected a member name at {index}")
        key, index = decode(text, index)
        index = _skip(text, index)
        if text[index : index + 1] != ":":
            raise ValueError(f"expected ':' at {index}")
        index = _skip(text, index + 1)
        if key == steps[0]:
            members[key], index = _value(text, index, steps[1:], decode)
        else:
            members[key], index = decode(text, index)
        index = _skip(text, index)
        char = text[index : index + 1]
        if char == "}":
            return members, index + 1
        if char != ",":
            raise ValueError(f"expected ',' or '}}' at {index}")
        index = _skip(text, index + 1)


def _elements(text: str, index: int, decode: _Decode) -> Generator[Any, None, int]:
    """The elements of the array at ``index`` (its ``[``), in order; returns where the
    array ends (past its ``]``)."""
    index = _skip(text, index + 1)
    if text[index : index + 1] == "]":
        return index + 1
    while True:
        value, index = decode(text, index)
        yield value
        index = _skip(text, index)
        char = text[index : index + 1]
        if char == "]":
            return index + 1
        if char != ",":
            raise ValueError(f"expected ',' or ']' at {index}")
        index = _skip(text, index + 1)


def decoder(parse_constant: Callable[[str], Any]) -> _Decode:
    """``raw_decode`` of a decoder that reads what ``json.loads`` reads."""
    return json.JSONDecoder(parse_constant=parse_constant).raw_decode
