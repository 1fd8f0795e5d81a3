"""Fuzzing the client with server answers: whatever comes back, items or a QueryError.

Random answers (statuses 100-599, JSON of any shape, bodies that are not JSON
or not UTF-8, documents nested thousands deep, wrong Content-Type and
charsets, random Retry-After and rate-limit headers) are served with respx to
a ``Client`` on the production HTTP side (``ClientPool``) and gate (breaker,
adaptive pacer and limit). The property: ``Client.query`` returns a list of
``Item`` or raises ``QueryError``; the header parsers return a value or None.

Profiles: ``ci`` (tests/conftest.py; the default: few examples, derandomized, no database) and
``long`` (thousands of examples, shrunk, for runs by hand; pytest-timeout's 120 s
per test is too short for it)::

    HYPOTHESIS_PROFILE=long python -m pytest -o timeout=0 tests/unit -k fuzz
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from resumer.crawler.workers import is_item
from resumer.errors import ConfigError, QueryError
from resumer.http.pool import ClientPool
from resumer.http.ratelimits import parse_rate_limits, parse_retry_after
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.job.settings import Job, Response
from resumer.model import Item, Task
from resumer.policies.breaker import CircuitBreaker
from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter
from resumer.policies.gate import Gate
from resumer.policies.pacer import Pacer, RateLimits
from resumer.query.client import Client
from resumer.query.mapping import Mapper, MappingError
from tests.unit.job.test_loader_fuzz import tables_of, toml_value, toml_values

# The profiles are set here, not in tests/conftest.py, which predates them. In CI a
# failure is not shrunk (shrinking a big answer takes longer than the whole suite):
# the answers found so far are pinned, minimal, in the FOUND_* tests below.

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=2, id="A 1/x", name="Alpha", type="core", parent_id="P1")
DEEP = 1_200  # nesting depth of the deep documents: past Python's default recursion limit
HTTP = ClientPool(timeout=5.0)  # shared by every example, as one run's threads share it

# -- the jobs ----------------------------------------------------------------------

PATHS = ["", "data.items", "items", "data", "data.0", "0", "a.b.c", "data.items.0"]
FIELDS = ["id", "name", "type", "meta.key", "0", "data.id", "a.b"]


def make_job(items: str = "data.items", fields: tuple[str, str, str] = ("id", "name", "type"),
             extra: str = "") -> Job:  # fmt: skip
    id_, name, type_ = fields
    return parse_job(
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n'
        f'[response]\nitems = "{items}"\nid = "{id_}"\nname = "{name}"\ntype = "{type_}"\n'
        f"{extra}",
        "job.toml",
    )


def production_gate() -> Gate:
    """The gate a run builds (runner.Policies): breaker, adaptive pacer and limit."""
    limiter = ConcurrencyLimiter(16)
    return Gate(
        stop=threading.Event(),
        limiter=limiter,
        breaker=CircuitBreaker(5, 30.0),
        pacer=Pacer(adaptive=True, retry_max=30.0),
        adaptive=AdaptiveLimit(limiter, 1, 16),
    )


# -- strategies ----------------------------------------------------------------------

# Lone surrogates included: JSON text can carry them ("\ud800").
any_text = st.text(max_size=30) | st.sampled_from(["\ud800", "a\udfff", "\udbff\udbff"])
json_keys = st.sampled_from(["data", "items", "id", "name", "type", "meta", "key", "next", "0"])
huge_ints = st.sampled_from([2**63, -(2**64), 10**308, 10**309, 10**4_000])
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(json_keys | any_text, c, max_size=4),
    max_leaves=25,
)
items = st.one_of(
    st.fixed_dictionaries(
        {"id": json_values},
        optional={"name": json_values, "type": json_values, "meta": json_values},
    ),
    json_values,
)
shaped = st.one_of(
    st.lists(items, max_size=5),
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"items": st.lists(items, max_size=5)})}),
    st.fixed_dictionaries({"data": json_values | st.lists(items, max_size=3)}),
    st.fixed_dictionaries({"items": json_values}),
)
documents = shaped | json_values


def encoded(document: Any, encoding: str) -> bytes:
    return json.dumps(document, ensure_ascii=encoding == "ascii").encode(
        "utf-8" if encoding == "ascii" else encoding, "surrogatepass"
    )


json_bodies = st.builds(
    encoded, documents, st.sampled_from(["utf-8", "ascii", "utf-16", "utf-32", "utf-16-be"])
)
nested = st.integers(1, 3 * DEEP).map(lambda n: b"[" * n + b"]" * n)
odd_bodies = st.sampled_from(
    [
        b"",
        b" ",
        b"null",
        b"<html>oops</html>",
        b'{"data": {"items": [{"id": "a"}]}}\xff',  # invalid UTF-8 after valid JSON
        b'{"data": {"items": [{"id": "\xc3\x28"}]}}',  # invalid UTF-8 inside a string
        b'\xef\xbb\xbf{"data": {"items": []}}',  # a UTF-8 byte order mark
        b'{"data": {"items": [{"id": 1e400}]}}',
        b'{"data": {"items": [{"id": NaN}, {"id": -Infinity}]}}',
        b'{"data": {"items": [{"id": ' + b"1" * 5_000 + b"}]}}",
        b'{"data": {"items": [{"id": "\\ud800"}]}}',  # a lone surrogate
        b'{"data": {"items": [{"id": "a"}]}, "data": 1}',  # a repeated key
        b'{"data": {"items": [' + b'{"id": "x"},' * 1_000 + b'{"id": "y"}]}}',
        b"[" * 100_000,
        b'{"a":' * 100_000,
    ]
)
bodies = st.one_of(json_bodies, json_bodies, odd_bodies, nested, st.binary(max_size=200))

header_text = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "3",
            "1.5",
            "1e400",
            "inf",
            "-inf",
            "nan",
            "1_000",
            "9" * 400,
            "Wed, 21 Oct 2015 07:28:30 GMT",
            "Wed, 21 Oct 2015 07:28:30 +2400",
            "Wed, 21 Oct 99999 07:28:30 GMT",
            "Mon, 01 Jan 0001 00:00:00 +0100",
            "31 Dec 9999 23:59:59 -2359",
            "Sun, 06 Nov 1994 08:49:37",
            "1700000030",
            '"default";r=7;t=2',
            '"default";q=60;w=10',
            "limit=10, remaining=3, reset=4",
            "r=;t=",
            ";;==,,",
            "q=1e308;w=5e-324",
            "r=1e308;t=5e-324",
            "r=0;t=1e300",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30),
)
rate_header_names = st.sampled_from(
    [
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Junk",
    ]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "application/json; charset=bogus",
        "text/html",
        "text/plain; charset=utf-7",
        "text/plain; charset=rot13",
        "text/plain; charset=base64",
        "text/plain; charset=idna",
        "application/octet-stream",
        "",
        ";;;",
    ]
)
encodings = st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "bogus", "gzip, gzip"])
headers = st.lists(
    st.one_of(
        st.tuples(rate_header_names, header_text),
        st.tuples(st.just("Content-Type"), content_types),
        st.tuples(st.just("Content-Encoding"), encodings),
        st.tuples(
            st.just("Location"), st.sampled_from(["/children", "http://[::1", "ftp://x/", "//"])
        ),
    ),
    max_size=5,
)
statuses = st.one_of(
    st.sampled_from([200, 200, 201, 204, 301, 302, 400, 404, 408, 425, 429, 500, 503]),
    st.integers(100, 599),
)


class Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def __repr__(self) -> str:
        body = (
            self.body if len(self.body) <= 80 else self.body[:40] + b"...%d bytes" % len(self.body)
        )
        return f"Answer({self.status}, {self.headers!r}, {body!r})"

    def response(self) -> httpx.Response:
        raw = [(name.encode(), value.encode("latin-1")) for name, value in self.headers]
        return httpx.Response(self.status, headers=raw, content=self.body)


answers = st.builds(Answer, statuses, headers, bodies)
transport_errors = st.sampled_from(
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("reset"),
        httpx.ProxyError("proxy"),
    ]
)
jobs = st.builds(
    make_job,
    st.sampled_from(PATHS),
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(FIELDS), st.sampled_from(FIELDS)),
)


# -- the property --------------------------------------------------------------------


def items_or_query_error(call: Callable[[], Any]) -> list[Item] | None:
    """Run ``call``: a list of Items (strings all), or a QueryError; nothing else."""
    try:
        found = list(call())
    except QueryError as exc:
        assert str(exc)
        return None
    for item in found:
        assert is_item(item)  # exactly so: the workers take the client's word for it
        assert (item.leaf, item.drop) == (0, 0)  # the job has no leaf or drop rule
        json.loads(item.payload)  # the payload stored is JSON text
    return found


def served(*answers: Answer | Exception) -> respx.MockRouter:
    """A respx router answering every URL with ``answers`` in turn (the last one again)."""
    router = respx.mock(assert_all_called=False)
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        next_one = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(next_one, Exception):
            raise next_one
        return next_one.response()

    router.route().mock(side_effect=answer)
    return router


def query(job: Job, *answers: Answer | Exception, roots: bool = False) -> list[Item] | None:
    # Every ${VAR} the job refers to is set: a body may hold one (the loader allows it).
    client = Client(bind(job, dict.fromkeys(job.env_vars(), "v")), HTTP, production_gate())
    with served(*answers):
        if roots:
            return items_or_query_error(client.load_roots)
        return items_or_query_error(lambda: client.query(TASK, 5.0))


# -- one answer ----------------------------------------------------------------------


@given(jobs, answers | transport_errors, st.booleans())
def test_any_answer_gives_items_or_a_query_error(
    job: Job, answer: Answer | Exception, roots: bool
) -> None:
    query(job, answer, roots=roots)


@given(statuses, headers, documents)
def test_any_json_document_gives_items_or_a_query_error(
    status: int, header_list: list[tuple[str, str]], document: Any
) -> None:
    answer = Answer(status, header_list, json.dumps(document).encode("utf-8", "surrogatepass"))
    query(make_job(), answer)


@given(documents, st.sampled_from(PATHS), st.sampled_from(FIELDS))
def test_the_mapper_gives_items_or_a_mapping_error(document: Any, path: str, id_: str) -> None:
    mapper = Mapper(Response(items=path, id=id_, name="name", type="type"))
    try:
        found = mapper.items(document)
    except MappingError:
        return
    assert all(is_item(item) for item in found)


# -- several pages ---------------------------------------------------------------------

PAGINATIONS = [
    '[response.pagination]\nmode = "page"\nsize = 2\n',
    '[response.pagination]\nmode = "cursor"\ncursor_path = "data.next"\n',
    '[rate]\nadaptive = false\n[response.pagination]\nmode = "cursor"\ncursor_path = "next"\n',
]
pages = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries(
            {"items": st.lists(items, max_size=3)}, optional={"next": json_values}
        )
    },
    optional={"next": json_values},
)


@given(st.sampled_from(PAGINATIONS), st.lists(pages | documents, min_size=1, max_size=4))
def test_any_pages_give_items_or_a_query_error(pagination: str, documents_: list[Any]) -> None:
    job = make_job(extra=pagination)
    answers = [Answer(200, [], json.dumps(d).encode("utf-8", "surrogatepass")) for d in documents_]
    last = Answer(200, [], b'{"data": {"items": []}}')  # then an empty page: the end
    query(job, *answers, last)


# -- deep documents ----------------------------------------------------------------------


def deep_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


DEEP_BODIES = {
    "a deep body": deep_list(DEEP),
    "a deeper body": deep_list(100_000),
    "a deep object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep items": b'{"data": {"items": ' + deep_list(DEEP) + b"}}",
    "a deep payload": b'{"data": {"items": [{"id": "a", "x": ' + deep_list(DEEP) + b"}]}}",
}


@pytest.mark.parametrize("body", list(DEEP_BODIES.values()), ids=list(DEEP_BODIES))
@pytest.mark.parametrize("status", [200, 404])
def test_deeply_nested_answers_give_items_or_a_query_error(status: int, body: bytes) -> None:
    query(make_job(), Answer(status, [], body))


# -- the jobs the loader accepts ---------------------------------------------------------


def post_job(body: str) -> Job | None:
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n'
        f'method = "POST"\nbody = {body}\n'
    )
    try:
        return parse_job(text, "job.toml")
    except ConfigError:
        return None  # refused at load: the loader's business (test_fuzz_config)


@given(tables_of(toml_values))
def test_any_body_the_loader_accepts_is_sent_or_a_query_error(body: dict[str, Any]) -> None:
    job = post_job(toml_value(body))
    if job is not None:
        query(job, Answer(200, [], b"[]"))


FOUND_BODIES = {
    "a nan in request.body": "{ x = nan }",
    "a date in request.body": "{ x = 1979-05-27 }",
    "a ${VAR} in request.body": '{ x = "${ABC}", y = ["{id}", "${ABC}"] }',
}


@pytest.mark.parametrize("body", list(FOUND_BODIES.values()), ids=list(FOUND_BODIES))
def test_found_bodies_are_refused_at_load_or_sent(body: str) -> None:
    job = post_job(body)
    if job is not None:
        query(job, Answer(200, [], b"[]"))


# -- the header parsers ---------------------------------------------------------------------


def _finite_or_none(value: float | None) -> bool:
    return value is None or (isinstance(value, float | int) and math.isfinite(value) and value >= 0)


@given(header_text | st.text(max_size=40) | st.none(), st.floats(0, 4e9) | st.none())
def test_retry_after_is_seconds_or_none(value: str | None, now: float | None) -> None:
    seconds = parse_retry_after(value, now=now)
    assert _finite_or_none(seconds)


@given(
    st.lists(st.tuples(rate_header_names, header_text | st.text(max_size=30)), max_size=6),
    st.floats(0, 4e9) | st.none(),
)
def test_rate_limit_headers_are_limits_or_none(
    pairs: list[tuple[str, str]], now: float | None
) -> None:
    raw = [(name.encode(), value.encode("utf-8", "surrogatepass")) for name, value in pairs]
    limits = parse_rate_limits(httpx.Headers(raw), now=now)
    if limits is not None:
        assert isinstance(limits, RateLimits)
        assert all(
            _finite_or_none(v)
            for v in (limits.remaining, limits.reset, limits.limit, limits.window)
        )


# -- the answers the fuzzers found ------------------------------------------------------------
# Each is a minimal answer that broke the property; the test passes once the client
# turns it into items or a QueryError.

FOUND = {
    "a non-text charset on an error status": Answer(
        404, [("Content-Type", "text/plain; charset=rot13")], b"x"
    ),
    "a codec that refuses errors=replace": Answer(
        500, [("Content-Type", "text/plain; charset=idna")], b"x"
    ),
    "a non-text charset on a 2xx that is not JSON": Answer(
        200, [("Content-Type", "text/plain; charset=base64")], b"x"
    ),
    "JSON nested 1,200 deep": Answer(200, [], deep_list(DEEP)),
}


@pytest.mark.parametrize("answer", list(FOUND.values()), ids=list(FOUND))
def test_found_answers_give_items_or_a_query_error(answer: Answer) -> None:
    query(make_job(), answer)


# -- what the checkpoint can store ----------------------------------------------------------
# An Item goes into SQLite as UTF-8 text: a lone surrogate ("\ud800", valid JSON
# escape syntax) cannot be encoded, and the run stops on an internal error.


def storable(found: list[Item] | None) -> None:
    for item in found or []:
        for field in (item.id, item.name, item.type, item.payload):
            field.encode("utf-8")  # what sqlite3 does with a str it binds


@given(st.lists(items, max_size=4), st.sampled_from(["ascii", "utf-8", "utf-16", "utf-32-be"]))
def test_mapped_items_are_text_the_checkpoint_can_store(
    found_items: list[Any], encoding: str
) -> None:
    """Whether a lone surrogate comes as an escape or in the body's own bytes."""
    storable(
        query(make_job(), Answer(200, [], encoded({"data": {"items": found_items}}, encoding)))
    )


@pytest.mark.parametrize("big_body", [4 << 20, 10], ids=["small", "big"])
@pytest.mark.parametrize("encoding", ["ascii", "utf-8", "utf-16", "utf-32-be"])
def test_a_lone_surrogate_is_refused_as_an_escape_or_as_bytes(
    encoding: str, big_body: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its UTF-8 bytes (ED A0 80) or UTF-16 code unit decode as json decodes them, to a
    string that the checkpoint cannot store: the query fails, the run goes on; a big
    body is then decoded whole, not left in its bytes, to be looked into."""
    monkeypatch.setattr("resumer.query.client.BIG_BODY", big_body)
    body = encoded({"data": {"items": [{"id": "a"}, {"id": "b\ud800"}]}}, encoding)
    client = Client(bind(make_job(), {}), HTTP, production_gate())
    with served(Answer(200, [], body)), pytest.raises(QueryError) as refused:
        client.query(TASK, 5.0)
    assert "holds a lone UTF-16 surrogate" in str(refused.value)
    assert not refused.value.transient


def test_a_lone_surrogate_in_an_id_is_refused_or_stored() -> None:
    storable(query(make_job(), Answer(200, [], b'{"data": {"items": [{"id": "\\ud800"}]}}')))
