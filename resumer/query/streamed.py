"""One huge answer read without holding it decoded: its items left in the body's
bytes, decoded a piece at a time as they are mapped, and again as they are stored.

A page of 300,000 items decoded whole is some six times its JSON in Python's
objects, and its mapped ``Item``s five times more; even its text beside its bytes is
twice the body. So for a body over ``answers.BIG_BODY``, when nothing but the
mapping reads inside the items, ``skeleton`` decodes everything but the items array
(the envelope that rules, messages and ``wait`` read, exactly as ``json`` would) and
puts a ``LazyItems`` in its place: the body and where the array starts. ``Mapper``
maps those items one at a time to check and count them, and hands on
``StreamedItems``, which map them again, one at a time, when the store inserts
them. What the page holds meanwhile is its bytes and a window of their text.

No I/O; what ``json`` refuses, this refuses (``ValueError``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

from resumer.model import Item, Streamed

_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between tokens, and all it allows
_NEXT = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")  # what follows an element
PIECE = 256 << 10  # bytes of a UTF-8 body decoded at a time (its window: some 7 times that)
_BOM = codecs.BOM_UTF8
_CUT = 2  # characters after a number that may still be part of it (".", "e-" of "1e-3")
_NEAR = 10  # characters from the end within which json's error may be the window's cut

_Decode = Callable[[str, int], tuple[Any, int]]


class _Window:
    """A body's text read forwards: a UTF-8 body decoded ``piece`` bytes at a time,
    the text behind the reader let go; any other encoding (rare) decoded whole, and
    held. Indices are the text's own, from its start, as if it were whole."""

    def __init__(self, content: bytes, piece: int, decode: _Decode) -> None:
        self.content, self.piece, self.raw = content, piece, decode
        self.text, self.base = "", 0  # the window and the index of its first character
        encoding = json.detect_encoding(content)
        self._next = len(_BOM) if encoding == "utf-8-sig" else 0  # the next byte to decode
        if encoding in ("utf-8", "utf-8-sig"):
            self._decoder: Any = codecs.getincrementaldecoder("utf-8")("surrogatepass")
            self.base_byte = self._next  # where the window's text starts in the body
        else:
            self._decoder, self.base_byte = None, -1  # never reopened: see ``reopen``
            self.text, self._next = content.decode(encoding, "surrogatepass"), len(content)

    def reopen(self, index: int) -> _Window:
        """A window of the same text from ``index`` (within this window) onwards."""
        again = _Window.__new__(_Window)
        again.content, again.piece, again.raw = self.content, self.piece, self.raw
        if self._decoder is None:  # decoded whole: the same text
            again._decoder, again.text, again.base = None, self.text, 0
            again._next, again.base_byte = self._next, -1
            return again
        again._decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        again.text, again.base = "", index
        again.base_byte = again._next = self._byte(index)
        return again

    def head(self, chars: int) -> str:
        """The first ``chars`` characters of the body's text (for messages)."""
        if self._decoder is None:
            return self.text[:chars]
        start = len(_BOM) if self.content.startswith(_BOM) else 0
        return self.content[start : start + 4 * chars].decode("utf-8", "replace")[:chars]

    def _byte(self, index: int) -> int:
        """Where the character at ``index`` starts in the body."""
        before = self.text[: index - self.base]
        return self.base_byte + len(before.encode("utf-8", "surrogatepass"))

    def _more(self, keep: int) -> bool:
        """Decode the next piece (at least as much as the window holds, so that a value
        longer than a piece costs no more than twice its decode), letting go of the
        text before ``keep``; False at the body's end."""
        if self._next >= len(self.content):
            return False
        cut = min(keep - self.base, len(self.text))
        if cut > 0:
            self.base_byte = self._byte(self.base + cut)
            self.text, self.base = self.text[cut:], self.base + cut
        size = max(self.piece, len(self.text))
        chunk = self.content[self._next : self._next + size]
        self._next += len(chunk)
        self.text += self._decoder.decode(chunk, final=self._next >= len(self.content))
        return True

    def skip(self, index: int) -> int:
        """Past the whitespace at ``index``."""
        while index - self.base >= len(self.text) and self._more(index):
            pass
        while True:
            match = _SPACE.match(self.text, index - self.base)
            assert match is not None  # it matches the empty string anywhere
            index = self.base + match.end()
            if match.end() < len(self.text) or not self._more(index):
                return index

    def char(self, index: int) -> str:
        """The character at ``index``, or "" past the end."""
        while index - self.base >= len(self.text) and self._more(index):
            pass
        return self.text[index - self.base : index - self.base + 1]

    def decode(self, index: int) -> tuple[Any, int]:
        """The JSON value at ``index`` and where it ends. A value the window cuts short
        (refused, or a number that may go on: ``1`` of ``12``, of ``1.5``, of ``1e-3``)
        is decoded again with more text."""
        while True:
            try:
                value, end = self.raw(self.text, index - self.base)
            except ValueError as error:
                if _cut_short(error, len(self.text)) and self._more(index):
                    continue
                raise
            if len(self.text) - end > _CUT or not isinstance(value, int | float):
                return value, self.base + end
            if not self._more(index):
                return value, self.base + end


def _cut_short(error: ValueError, length: int) -> bool:
    """Whether ``json`` may refuse a window of ``length`` characters only for where it
    ends: a string left open, or an error within a token's length of its end (``tru``,
    ``-Infinit``, ``\\u00``, ``[1, 2.``). Anything else is the body's own fault, refused
    at once, without reading the rest of a body that is not JSON (a page of HTML)."""
    if not isinstance(error, json.JSONDecodeError):
        return True
    return error.msg.startswith("Unterminated string") or length - error.pos < _NEAR


class LazyItems(list[Any]):
    """An items array left in its body: empty as a list (so that what only looks at the
    document around it sees a list), its items read one at a time by ``iter_items``."""

    def __init__(self, window: _Window, start: int, size: int) -> None:
        super().__init__()
        self._window, self.start, self.size = window, start, size

    def iter_items(self) -> Iterator[Any]:
        """Each item decoded, in order, none kept."""
        yield from _elements(self._window.reopen(self.start), self.start)

    def head(self, chars: int) -> str:
        """The start of the body they are in, for a message (the document around them,
        encoded again, would show them as an empty list)."""
        return self._window.head(chars)


class StreamedItems(Streamed):
    """A page's mapped items, mapped again from its body as they are read: ``map`` is the
    one that checked them all (so it raises nothing now, but for an item nested within a
    few frames of the recursion limit: see ``errors.UnstorablePage``)."""

    def __init__(self, items: LazyItems, map_one: Callable[[Any, int], Item], waits: int) -> None:
        super().__init__(items.size, waits)
        self._items, self._map = items, map_one

    def __iter__(self) -> Iterator[Item]:
        map_one = self._map
        for index, item in enumerate(self._items.iter_items()):
            yield map_one(item, index)


def skeleton(content: bytes, path: str, decode: _Decode, piece: int = PIECE) -> Any:
    """The document in ``content`` as ``json.loads`` would give it, but the array at the
    dotted ``path`` (through objects only) a ``LazyItems``; what is not at ``path``, or
    is not an array, decoded as usual. ``decode`` is a ``JSONDecoder.raw_decode``."""
    text = _Window(content, piece, decode)
    value, end = _value(text, text.skip(0), path.split("."))
    if text.char(text.skip(end)):
        raise ValueError("extra data after the document")
    return value


def _value(text: _Window, index: int, steps: list[str]) -> tuple[Any, int]:
    """The value at ``index`` and where it ends, ``steps`` the path still to follow in it."""
    char = text.char(index)
    if not steps and char == "[":
        window = text.reopen(index)  # before the count moves ``text`` past the array
        elements, count = _elements(text, index), 0
        while True:
            try:
                next(elements)
            except StopIteration as ended:
                return LazyItems(window, index, count), ended.value
            count += 1
    if steps and char == "{":
        return _object(text, index, steps)
    return text.decode(index)


def _object(text: _Window, index: int, steps: list[str]) -> tuple[dict[str, Any], int]:
    """An object, the member named ``steps[0]`` followed further: the last of that name
    wins, as in ``json``."""
    members: dict[str, Any] = {}
    index = text.skip(index + 1)
    if text.char(index) == "}":
        return members, index + 1
    while True:
        if text.char(index) != '"':
            raise ValueError(f"expected a member name at {index}")
        key, index = text.decode(index)
        index = text.skip(index)
        if text.char(index) != ":":
            raise ValueError(f"expected ':' at {index}")
        index = text.skip(index + 1)
        if key == steps[0]:
            members[key], index = _value(text, index, steps[1:])
        else:
            members[key], index = text.decode(index)
        index = text.skip(index)
        char = text.char(index)
        if char == "}":
            return members, index + 1
        if char != ",":
            raise ValueError(f"expected ',' or '}}' at {index}")
        index = text.skip(index + 1)


def _elements(text: _Window, index: int) -> Generator[Any, None, int]:
    """The elements of the array at ``index`` (its ``[``), in order; returns where the
    array ends (past its ``]``). The usual element, whole in the window with its ``,``
    or ``]``, is read in place; the rest, through the window's checks."""
    index = text.skip(index + 1)
    if text.char(index) == "]":
        return index + 1
    raw = text.raw
    while True:
        chars, base = text.text, text.base
        try:
            value, end = raw(chars, index - base)
            after = _NEXT.match(chars, end)
        except ValueError:  # cut short by the window, or not JSON: see below
            after = None
        if after is not None and after.end() < len(chars):
            yield value
            if after.group(1) == "]":
                return base + after.end(1)
            index = base + after.end()
            continue
        value, index = text.decode(index)
        yield value
        index = text.skip(index)
        char = text.char(index)
        if char == "]":
            return index + 1
        if char != ",":
            raise ValueError(f"expected ',' or ']' at {index}")
        index = text.skip(index + 1)


def decoder(parse_constant: Callable[[str], Any]) -> _Decode:
    """``raw_decode`` of a decoder that reads what ``json.loads`` reads."""
    return json.JSONDecoder(parse_constant=parse_constant).raw_decode
