"""What an answer means: the one place that decides how an HTTP answer counts.

First the job's ``[[response.rule]]``s (``Rules.judge``): the first whose conditions
all hold decides, with one of ``RULE_OUTCOMES`` (ok, empty, retry, throttle, fail,
renew, stop), before any item is read, so an error envelope can never pass as an
empty page. No rule matching, the HTTP status decides (``kind_of_status``).

Either way the answer counts as one of the gate's kinds (``policies.gate``):
``SUCCESS`` (a body to read), ``THROTTLE`` (busy, not broken: the send rate
drops, the breaker does not count it, the node is never failed for it),
``FAILURE`` (a transient fault: retried, counted by the breaker) or ``PERMANENT``
(the node fails at once). A 401 is neither: it is the credentials' fault, and the
client hands it to auth (renew once, else the run stops).

No I/O and no state beyond the compiled rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from resumer.job.messages import one_line
from resumer.job.settings import Rule
from resumer.policies.gate import FAILURE, PERMANENT, SUCCESS, THROTTLE
from resumer.query.conditions import FieldTest
from resumer.query.mapping import Constant, as_text, lookup
from resumer.query.streamed import decoder, skeleton

# How each rule outcome counts for the policies (renew and stop end the call otherwise).
RULE_KINDS = {
    "ok": SUCCESS,
    "empty": SUCCESS,
    "retry": FAILURE,
    "throttle": THROTTLE,
    "fail": PERMANENT,
    "renew": PERMANENT,  # as a 401: not held against the server
    "stop": PERMANENT,
}
EMPTY: Any = object()  # what the client's call gives for a rule's "empty": no children

__all__ = [
    "BIG_BODY",
    "EMPTY",
    "FAILURE",
    "NOT_JSON",
    "PERMANENT",
    "RULE_KINDS",
    "SUCCESS",
    "THROTTLE",
    "Body",
    "Rules",
    "Verdict",
    "api_message",
    "kind_of_status",
]

MESSAGE_LENGTH = 200  # characters of the API's own message kept in an error
NOT_JSON: Any = object()  # what ``Body.document`` is for a body that is not JSON


class Body:
    """An answer's body, decoded as JSON once, when first asked for.

    ``orjson`` decodes standard JSON (a third of ``json``'s time); what it refuses is
    decoded by ``json`` as before, which also takes what standard JSON lacks (``NaN``,
    a lone surrogate escape), and so is a body with a number of 19 digits or more
    (``orjson`` would make an integer past 64 bits a float: an id must not lose its
    digits). Such a body's ``NaN`` and ``Infinity`` are ``mapping.Constant`` floats,
    which ``orjson`` will not encode: its items' payloads are then encoded by ``json``,
    so they say exactly what the API said (``mapping.encode_payload``). A body over
    ``BIG_BODY`` is decoded by ``json`` too: ``orjson`` first parses into a buffer of
    about ten times the body, which for one huge answer is most of the crawl's memory.
    With ``streams`` (an items path), the items array there is left in the bytes
    (``streamed.skeleton``): the caller says so only for a big body whose items nothing
    but the mapping reads."""

    __slots__ = ("_document", "content", "streams", "surrogate_free")

    def __init__(self, content: bytes, streams: str | None = None) -> None:
        self.content = content
        self.streams = streams  # an items path: its array is left in the bytes (``streamed``)
        self._document: Any = _UNREAD
        # True once orjson decoded it: orjson refuses a lone surrogate, escaped or in bytes.
        self.surrogate_free = False

    @property
    def document(self) -> Any:
        """The decoded JSON body, or ``NOT_JSON``."""
        if self._document is _UNREAD and self.streams is not None:
            try:
                self._document = skeleton(self.content, self.streams, _DECODE)
            except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError too)
                self._document = NOT_JSON
        if self._document is _UNREAD:
            try:
                if len(self.content) > BIG_BODY or _has_long_number(self.content):
                    raise orjson.JSONDecodeError("json's to decode", "", 0)
                self._document = orjson.loads(self.content)
                self.surrogate_free = True
            except orjson.JSONDecodeError:
                try:
                    self._document = json.loads(self.content, parse_constant=Constant.parse)
                except (ValueError, RecursionError):  # not JSON, or nested too deep
                    self._document = NOT_JSON
        return self._document


_UNREAD = object()
_DECODE = decoder(Constant.parse)
BIG_BODY = 4 << 20  # bytes: a body larger is decoded by json, in less memory than orjson's
_LONG_DIGITS = 19  # digits in a row that may not fit 64 bits (in a string too)
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_CHUNK = 1 << 20  # bytes: a big body is looked through a piece at a time, not copied whole


def _has_long_number(content: bytes) -> bool:
    """True if ``content`` holds ``_LONG_DIGITS`` digits in a row. Every digit made a
    zero, a substring search: a tenth of a regular expression's time."""
    run = b"0" * _LONG_DIGITS
    step = _CHUNK - _LONG_DIGITS  # pieces overlap, so no run is cut in two unseen
    for start in range(0, max(1, len(content) - _LONG_DIGITS + 1), step):
        if run in content[start : start + _CHUNK].translate(_ZERO_DIGITS):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a rule said of an answer: ``then`` (one of ``RULE_OUTCOMES``), the rule
    (its ``number`` names it in messages) and the seconds its ``wait`` path gave."""

    then: str
    rule: int
    wait: float | None = None


class Rules:
    """A job's ``[[response.rule]]``s, compiled once.

    >>> rules = Rules([Rule(1, "empty", status=frozenset({404}))])
    >>> rules.judge(404, Body(b"not found"))
    Verdict(then='empty', rule=1, wait=None)
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = [_Compiled(rule) for rule in rules]
        self.renews = any(rule.then == "renew" for rule in rules)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def judge(self, status: int, body: Body) -> Verdict | None:
        """The verdict of the first rule whose conditions all hold; None if none does."""
        values: dict[str, Any] = {}  # each field read once, however many rules test it
        for rule in self._rules:
            if rule.holds(status, body, values):
                return Verdict(rule.then, rule.number, rule.wait_of(body))
        return None


class _Compiled:
    __slots__ = ("contains", "field", "number", "status", "then", "wait")

    def __init__(self, rule: Rule) -> None:
        self.number = rule.number
        self.then = rule.then
        self.status = rule.status
        self.field = FieldTest(rule.condition) if rule.condition is not None else None
        self.contains = rule.contains.encode("utf-8") if rule.contains is not None else None
        self.wait = rule.wait

    def holds(self, status: int, body: Body, values: dict[str, Any]) -> bool:
        if self.status and status not in self.status:
            return False
        if self.contains is not None and self.contains not in body.content:
            return False
        field = self.field
        if field is None:
            return True
        document = body.document  # a field is never read from a body that is not JSON
        if document is NOT_JSON:
            return False
        value = values.get(field.field, _UNREAD)
        if value is _UNREAD:
            value = values[field.field] = field.value(document)
        return field.holds_for(value)

    def wait_of(self, body: Body) -> float | None:
        if self.wait is None or body.document is NOT_JSON:
            return None
        try:
            value = lookup(body.document, self.wait)
        except KeyError:
            return None
        return _seconds(value)


def _seconds(value: Any) -> float | None:
    """A number of seconds (a number, or a numeric string); None if unusable."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def api_message(document: Any, path: str | None) -> str | None:
    """The API's own error text at ``path`` in a decoded body (``response.message``), on
    one line and cut to ``MESSAGE_LENGTH``; None when there is none."""
    if path is None or document is NOT_JSON:
        return None
    try:
        value = lookup(document, path)
    except KeyError:
        return None
    if value is None or isinstance(value, dict | list):
        return None
    text = one_line(" ".join(as_text(value).split()))
    return text[:MESSAGE_LENGTH] or None


def kind_of_status(
    status: int,
    retry_after: float | None,
    retry_on: Collection[int],
    sheds_load: Callable[[], bool],
) -> str:
    """How an HTTP error status counts (``status`` >= 300, not 401).

    A status outside ``retry_on`` is permanent. A 503 is a throttle when it says
    when to come back (Retry-After), or when the server still accepts other calls
    (``sheds_load()``: it sheds load, as nginx's ``limit_req`` does by default); a
    503 among nothing but errors is an outage, and the breaker counts it.

    >>> kind_of_status(429, None, {429, 503}, lambda: False)
    'throttle'
    >>> kind_of_status(503, None, {429, 503}, lambda: False)
    'failure'
    >>> kind_of_status(404, None, {429, 503}, lambda: False)
    'permanent'
    """
    if status not in retry_on:
        return PERMANENT
    if status in (429, 425):
        return THROTTLE  # busy, not broken: the breaker does not count it
    if status == 503 and (retry_after is not None or sheds_load()):
        return THROTTLE
    return FAILURE if status >= 500 or status == 408 else THROTTLE
