"""Response mapping: a decoded body turned into child ``Item``s, following the job's
[response] section (the items path, and the id, name and type fields).

``Mapper`` maps; ``lookup`` follows a dotted path; ``as_text`` gives an id, name
or type as text; ``MappingError`` says what shape was expected and what was
there. This module makes no HTTP call and reads no file: it sees decoded JSON
values only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from resumer.errors import TOO_DEEP, ResumerError
from resumer.job.settings import Response
from resumer.model import Item
from resumer.query.streamed import LazyItems, StreamedItems

if TYPE_CHECKING:
    from resumer.query.shape import Shape


class MappingError(ResumerError, ValueError):
    """A body does not have the shape the job's [response] section describes.

    A ``ValueError`` too: ``sources._read_jsonl`` catches one ``ValueError`` for a line that is
    not JSON and for an item without an id."""


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` ("" = the document); ``KeyError`` naming the missing step."""
    if path == "":
        return document
    value = document
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise KeyError(step)
    return value


def as_text(value: Any) -> str:
    """An id/name/type as text: strings as they are, other scalars as their JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


_MISSING = object()
# One encoder for every payload: json.dumps with options builds a new one per call.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _payload_encoder() -> Callable[[dict[str, Any]], str]:
    """``_encoder.encode`` for an item (a dict), without the C encoder that ``encode``
    builds anew for each call (half its cost on a small item): the C encoder is built
    once here, without the circular-reference check (a decoded JSON body has no
    cycles; a cycle would end in a RecursionError, which ``Mapper.items`` reports). The
    plain ``encode`` where this Python has no C encoder or one with another signature."""
    try:
        from _json import make_encoder

        chunks = make_encoder(
            None,
            _encoder.default,
            json.encoder.encode_basestring,  # ensure_ascii=False's string encoder
            None,
            ":",
            ",",
            False,
            False,
            True,
        )
    except (ImportError, TypeError):
        return _encoder.encode

    def encode(item: dict[str, Any]) -> str:
        return "".join(chunks(item, 0))

    sample = {"a": [1, 2.5, None, True, 'é\u2028"x'], "b": {"c": float("nan")}, "": ""}
    return encode if encode(sample) == _encoder.encode(sample) else _encoder.encode


_exact_payload = _payload_encoder()


class Constant(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` as a body wrote them (not standard JSON, but
    Python's ``json`` reads them): a float that ``orjson`` refuses to encode, so that the
    payload holding it is encoded by ``json``, as it was written."""

    @classmethod
    def parse(cls, text: str) -> Constant:
        return cls(float(text))


def encode_payload(item: dict[str, Any]) -> str:
    """An item's JSON text: by ``orjson`` (a fifth of ``json``'s time), or by ``json`` for
    what ``orjson`` cannot say as written: an integer past 64 bits, a ``Constant``, a
    lone surrogate (refused later, with its own message)."""
    try:
        return orjson.dumps(item).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _exact_payload(item)


_orjson_dumps = orjson.dumps
# ``Item(...)`` without its Python-level ``__new__`` (the usual item: no rule matched).
_new_item = tuple.__new__


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """A field reader for a dotted path; a plain key (the usual case) is one dict lookup."""
    if "." not in path:
        return lambda item: item.get(path, _MISSING)

    def get(item: dict[str, Any]) -> Any:
        try:
            return lookup(item, path)
        except KeyError:
            return _MISSING

    return get


def _optional_text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is _MISSING or isinstance(value, dict | list):
        return ""
    return as_text(value)


BIG_PAGE = 10_000  # items in one answer from which each is let go once mapped


class Mapper:
    """Turns a decoded body into ``Item``s following the [response] section; with a
    ``Shape``, each item is marked with the leaf or drop rule that matches it (a dropped
    item need not map: it is judged before its id is read)."""

    def __init__(self, response: Response, shape: Shape | None = None) -> None:
        self.response = response
        self.shape = shape
        self._id = _getter(response.id)
        self._name = _getter(response.name)
        self._type = _getter(response.type)
        keys = (response.id, response.name, response.type)
        self._plain_keys = keys if all(k and "." not in k for k in keys) else None

    def items(self, document: Any) -> list[Item] | StreamedItems:
        try:
            return self._items(document)
        except RecursionError:  # an item nested past Python's stack: no payload to store
            raise MappingError(TOO_DEEP) from None

    def _items(self, document: Any) -> list[Item] | StreamedItems:
        path = self.response.items
        try:
            found = lookup(document, path)
        except KeyError:
            raise MappingError(_missing_path(document, path)) from None
        if not isinstance(found, list):
            where = f"items path {path!r}" if path else "the body"
            raise MappingError(f"{where} is {kind_of(found)}, expected a list of items")
        if isinstance(found, LazyItems):
            return self._streamed(found)
        # A page of many items lets each decoded item go once it is mapped, so that the
        # page is never held whole twice, decoded and mapped (the decoded is the larger).
        release = len(found) > BIG_PAGE
        if self.shape is not None or not self._plain_keys:
            mapped = []
            for index, item in enumerate(found):
                if release:
                    found[index] = None
                mapped.append(self.item(item, index))
            return mapped
        # The usual case, inlined: plain keys whose values are already strings.
        id_key, name_key, type_key = self._plain_keys
        out: list[Item] = []
        for index, item in enumerate(found):
            if release:
                found[index] = None
            if type(item) is dict:
                raw_id, name, kind = (
                    item.get(id_key),
                    item.get(name_key, ""),
                    item.get(type_key, ""),
                )
                if type(raw_id) is str and type(name) is str and type(kind) is str:
                    try:  # encode_payload, inlined: once per item of every page
                        payload = _orjson_dumps(item).decode()
                    except TypeError:
                        payload = _exact_payload(item)
                    out.append(_new_item(Item, (raw_id, name, kind, payload, 0, 0)))
                    continue
            out.append(self._mapped(item, index))  # conversions and errors
        return out

    def _streamed(self, found: LazyItems) -> StreamedItems:
        """Items left in the answer's bytes: each mapped now, to check it and count those
        to wait for, and let go; mapped again, the same way, when they are stored."""
        waits = 0
        for index, item in enumerate(found.iter_items()):
            mapped = self.item(item, index)
            waits += not (mapped.leaf or mapped.drop)
        return StreamedItems(found, self.item, waits)

    def item(self, item: Any, index: int) -> Item:
        """One item (the ``index``-th) as an ``Item``, marked by the shape's rules."""
        if self.shape is None or not isinstance(item, dict):
            return self._mapped(item, index)  # not an object: the usual error
        leaf, drop = self.shape.judge(item)
        if drop:
            name, kind = _optional_text(self._name(item)), _optional_text(self._type(item))
            return Item(_optional_text(self._id(item)), name, kind, "", 0, drop)
        mapped = self._mapped(item, index)
        return mapped._replace(leaf=leaf) if leaf else mapped

    def _mapped(self, item: Any, index: int) -> Item:
        if not isinstance(item, dict):
            raise MappingError(f"item {index} is {kind_of(item)}, expected an object")
        raw_id = self._id(item)
        if type(raw_id) is not str:
            if raw_id is _MISSING or raw_id is None or isinstance(raw_id, dict | list):
                raise MappingError(
                    f"item {index} has no usable id field {self.response.id!r}{_keys_hint(item)}"
                )
            raw_id = as_text(raw_id)
        return Item(
            raw_id,
            _optional_text(self._name(item)),
            _optional_text(self._type(item)),
            encode_payload(item),
        )


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _missing_path(document: Any, path: str) -> str:
    """Where a dotted path stops, and the keys that were there instead."""
    found, steps = document, path.split(".")
    for depth, step in enumerate(steps):
        try:
            found = lookup(found, step)
        except KeyError:
            where = "the body" if depth == 0 else repr(".".join(steps[:depth]))
            if depth == 0:
                return f"items path {path!r} not found{_keys_hint(found)}"
            keys = ", ".join(list(found)[:10]) if isinstance(found, dict) else kind_of(found)
            return f"items path {path!r} not found: {where} has no {step!r} (it has: {keys})"
    return f"items path {path!r} not found"


def _keys_hint(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:10]) or "(none)"
        return f"; its top-level keys are: {keys}"
    return f"; the body is {kind_of(value)}"
