"""One query over HTTP (respx): request shapes, response mapping, error classes."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from resumer.client import Client
from resumer.errors import ConfigError, QueryError
from resumer.http import ClientPool
from resumer.jobfile import parse_job
from resumer.mapping import Mapper
from resumer.model import Item, Task
from resumer.policies import CallOutcome, ConcurrencyLimiter, Gate
from resumer.settings import Response
from resumer.sources import read_source_file

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=2, id="A 1/x", name="Alpha", type="core", parent_id="P1")


def make_client(extra: str = "", env: dict[str, str] | None = None, **request: str) -> Client:
    lines = "".join(f"{k} = {v}\n" for k, v in request.items())
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n{lines}'
        f'[response]\nitems = "data.items"\n{extra}'
    )
    job = parse_job(text, "job.toml")
    return Client(job, env or {}, ClientPool(timeout=10.0))


def items_body(*items: dict[str, object]) -> dict[str, object]:
    return {"data": {"items": list(items)}}


@respx.mock
def test_get_sends_templated_params() -> None:
    route = respx.get(f"{BASE}/children").respond(json=items_body({"id": "c1", "name": "n"}))
    client = make_client()
    assert client.query(TASK, 5.0) == [Item("c1", "n", "", '{"id":"c1","name":"n"}')]
    assert dict(route.calls.last.request.url.params) == {
        "id": "A 1/x",
        "name": "Alpha",
        "type": "core",
    }


@respx.mock
def test_post_sends_templated_json_with_level_as_a_number() -> None:
    route = respx.post(f"{BASE}/children").respond(json=items_body())
    client = make_client(
        method='"POST"',
        body='{ featureId = "{id}", depth = "{level}", label = "L{level}", up = "{parent_id}" }',
    )
    assert client.query(TASK, 5.0) == []
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"featureId": "A 1/x", "depth": 2, "label": "L2", "up": "P1"}


@respx.mock
def test_url_placeholders_are_percent_encoded_path_segments() -> None:
    route = respx.get(f"{BASE}/features/A%201%2Fx/children").respond(json=items_body())
    job_text = (
        f'[source]\nfile = "r.csv"\n[request]\nurl = "{BASE}/features/{{id}}/children"\n'
        'params = {}\n[response]\nitems = "data.items"\n'
    )
    client = Client(parse_job(job_text, "job.toml"), {}, httpx.Client())
    client.query(TASK, 5.0)
    assert route.called


@respx.mock
def test_headers_carry_secrets_from_the_environment() -> None:
    route = respx.get(f"{BASE}/children").respond(json=items_body())
    client = make_client(
        headers='{ Authorization = "Bearer ${TOKEN}", X-Feature = "{id}@{level}" }',
        env={"TOKEN": "t0p"},
    )
    client.query(TASK, 5.0)
    sent = route.calls.last.request.headers
    assert (sent["Authorization"], sent["X-Feature"]) == ("Bearer t0p", "A 1/x@2")


@respx.mock
def test_the_source_call_sends_the_same_headers() -> None:
    route = respx.get(f"{BASE}/features").respond(json=items_body({"id": "r1"}))
    client = make_client(
        headers='{ Authorization = "Bearer ${TOKEN}", X-Node = "n{id}" }', env={"TOKEN": "t"}
    )
    assert [item.id for item in client.load_roots()] == ["r1"]
    sent = route.calls.last.request.headers
    assert (sent["Authorization"], sent["X-Node"]) == ("Bearer t", "n")


@respx.mock
def test_http_4xx_is_permanent_and_names_status_url_and_body() -> None:
    respx.get(f"{BASE}/children").respond(404, text="no such feature " + "x" * 300)
    with pytest.raises(QueryError) as caught:
        make_client().query(TASK, 5.0)
    error = caught.value
    assert not error.transient
    assert error.status == 404
    text = str(error)
    assert text.startswith("HTTP 404 from GET http://127.0.0.1:9/children?id=A+1%2Fx")
    assert "no such feature" in text
    assert "x" * 200 not in text  # the body is cut to 200 characters


@respx.mock
def test_http_5xx_is_transient() -> None:
    respx.get(f"{BASE}/children").respond(503, text="busy")
    with pytest.raises(QueryError) as caught:
        make_client().query(TASK, 5.0)
    assert caught.value.transient


@respx.mock
def test_connection_errors_are_transient() -> None:
    respx.get(f"{BASE}/children").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(QueryError) as caught:
        make_client().query(TASK, 5.0)
    assert caught.value.transient
    assert "ConnectError" in str(caught.value)


@respx.mock
def test_a_body_that_is_not_json_fails_the_node() -> None:
    respx.get(f"{BASE}/children").respond(200, text="<html>oops</html>")
    with pytest.raises(QueryError, match=r"body is not JSON .*<html>oops") as caught:
        make_client().query(TASK, 5.0)
    assert not caught.value.transient


@respx.mock
def test_a_missing_items_path_lists_the_top_level_keys() -> None:
    respx.get(f"{BASE}/children").respond(json={"code": 0, "result": []})
    with pytest.raises(QueryError) as caught:
        make_client().query(TASK, 5.0)
    assert "items path 'data.items' not found; its top-level keys are: code, result" in str(
        caught.value
    )


@respx.mock
def test_secrets_never_appear_in_error_messages() -> None:
    respx.get(url__startswith=f"{BASE}/children").respond(500, text="token k3y+1 rejected")
    client = make_client(params='{ id = "{id}", key = "${KEY}" }', env={"KEY": "k3y+1"})
    with pytest.raises(QueryError) as caught:
        client.query(TASK, 5.0)
    assert "k3y" not in str(caught.value)
    assert "***" in str(caught.value)


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


def test_csv_source_reads_rows_as_string_payloads(tmp_path: Path) -> None:
    source = tmp_path / "roots.csv"
    source.write_text("id,name,type,owner\nA1,Alpha,core,ann\nA2,Beta,misc,bob\n")
    items = list(read_source_file(source, mapper().response))
    assert [i.id for i in items] == ["A1", "A2"]
    assert json.loads(items[0].payload) == {
        "id": "A1",
        "name": "Alpha",
        "type": "core",
        "owner": "ann",
    }


def test_json_and_jsonl_sources_use_the_response_fields(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('[{"key": 1, "name": "a"}]')
    (tmp_path / "r.jsonl").write_text('{"key": 1, "name": "a"}\n\n{"key": 2}\n')
    response = mapper(id="key").response
    assert [i.id for i in read_source_file(tmp_path / "r.json", response)] == ["1"]
    assert [i.id for i in read_source_file(tmp_path / "r.jsonl", response)] == ["1", "2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.csv", "name,type\nA,b\n", "r.csv:1: expected a header row with id,name,type"),
        ("r.csv", "id,name,type\n,x,y\n", "r.csv:2: empty id"),
        ("r.json", "{", "not valid JSON"),
        ("r.jsonl", '{"id": 1}\n{"name": 2}\n', "r.jsonl:2: item 2 has no usable id"),
    ],
)
def test_bad_source_files_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match=message):
        list(read_source_file(tmp_path / name, mapper().response))


class RecordingGate(Gate):
    """A gate that notes how each call was classified."""

    def __init__(self) -> None:
        super().__init__(stop=threading.Event(), limiter=ConcurrencyLimiter(4))
        self.kinds: list[str] = []

    def _record(
        self, outcome: CallOutcome, probe: bool, latency: float, paced: float, in_flight: int
    ) -> None:
        self.kinds.append(outcome.kind)


def classified(status: int, headers: dict[str, str] | None = None) -> tuple[QueryError, str]:
    gate = RecordingGate()
    with respx.mock:
        respx.get(url__startswith=f"{BASE}/children").respond(status, headers=headers, text="x")
        job = parse_job(
            f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\n', "job.toml"
        )
        with pytest.raises(QueryError) as caught:
            Client(job, {}, httpx.Client(), gate).query(TASK, 5.0)
    return caught.value, gate.kinds[0]


@pytest.mark.parametrize(
    ("status", "headers", "transient", "kind", "retry_after"),
    [
        (429, {"Retry-After": "3"}, True, "throttle", 3.0),
        (429, None, True, "throttle", None),
        (503, {"Retry-After": "2"}, True, "throttle", 2.0),
        (503, None, True, "failure", None),
        (500, None, True, "failure", None),
        (408, None, True, "failure", None),
        (501, None, False, "permanent", None),
        (404, None, False, "permanent", None),
    ],
)
def test_statuses_are_classified_by_retry_on(
    status: int, headers: dict[str, str] | None, transient: bool, kind: str, retry_after: float
) -> None:
    error, seen = classified(status, headers)
    assert (error.transient, seen, error.retry_after) == (transient, kind, retry_after)


def test_a_503_is_a_throttle_while_the_server_still_accepts_calls() -> None:
    class Shedding(RecordingGate):
        def sheds_load(self) -> bool:
            return True  # the pacer saw a success lately

    gate = Shedding()
    with respx.mock:
        respx.get(url__startswith=f"{BASE}/children").respond(503, text="busy")
        job = parse_job(
            f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\n', "job.toml"
        )
        with pytest.raises(QueryError) as caught:
            Client(job, {}, httpx.Client(), gate).query(TASK, 5.0)
    assert (gate.kinds, caught.value.throttled, caught.value.transient) == (
        ["throttle"],
        True,
        True,
    )


def test_rate_limit_headers_are_read_in_every_common_form() -> None:
    from resumer.policies import RateLimits
    from resumer.ratelimits import parse_rate_limits

    def read(headers: dict[str, str]) -> RateLimits | None:
        return parse_rate_limits(httpx.Headers(headers), now=1_700_000_000.0)

    ietf = {"RateLimit-Limit": "100", "RateLimit-Remaining": "40", "RateLimit-Reset": "5"}
    assert read(ietf) == RateLimits(remaining=40, reset=5, limit=100)
    github = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "9"}
    github["X-RateLimit-Reset"] = "1700000030"  # a Unix time
    assert read(github) == RateLimits(remaining=9, reset=30, limit=5000)
    draft = {"RateLimit": '"default";r=7;t=2', "RateLimit-Policy": '"default";q=60;w=10'}
    assert read(draft) == RateLimits(remaining=7, reset=2, limit=60, window=10)
    older = {"RateLimit": "limit=10, remaining=3, reset=4"}
    assert read(older) == RateLimits(remaining=3, reset=4, limit=10)
    assert read({"Content-Type": "application/json"}) is None
    assert read({"RateLimit-Remaining": "soon"}) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from resumer.ratelimits import parse_retry_after

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def paged_client(pagination: str, method: str = "GET") -> Client:
    text = (
        f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\nmethod = "{method}"\n'
        f'[response]\nitems = "data.items"\n[response.pagination]\n{pagination}'
    )
    return Client(parse_job(text, "job.toml"), {}, httpx.Client())


def page_of(*ids: str, following: str | None = None) -> dict[str, object]:
    return {"data": {"items": [{"id": i} for i in ids], "next": following}}


@respx.mock
def test_page_mode_reads_pages_until_a_short_one() -> None:
    route = respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", "b")),
            httpx.Response(200, json=page_of("c", "d")),
            httpx.Response(200, json=page_of("e")),
        ]
    )
    items = paged_client('mode = "page"\nsize = 2\n').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "b", "c", "d", "e"]
    pages = [dict(call.request.url.params) for call in route.calls]
    assert [(p["page"], p["size"], p["id"]) for p in pages] == [
        ("1", "2", "A 1/x"),
        ("2", "2", "A 1/x"),
        ("3", "2", "A 1/x"),
    ]


@respx.mock
def test_cursor_mode_follows_the_cursor_until_it_is_null() -> None:
    route = respx.post(f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", following="k1")),
            httpx.Response(200, json=page_of("b", following="k2")),
            httpx.Response(200, json=page_of("c")),
        ]
    )
    client = paged_client('mode = "cursor"\ncursor_path = "data.next"\nsize_param = ""\n', "POST")
    assert [i.id for i in client.query(TASK, 5.0)] == ["a", "b", "c"]
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [s.get("cursor") for s in sent] == [None, "k1", "k2"]
    assert all(s["id"] == "A 1/x" for s in sent)


@respx.mock
def test_a_failed_middle_page_fails_the_whole_query() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", "b")),
            httpx.Response(500, text="oops"),
        ]
    )
    with pytest.raises(QueryError, match="HTTP 500") as caught:
        paged_client('mode = "page"\nsize = 2\n').query(TASK, 5.0)
    assert caught.value.transient


@respx.mock
def test_a_repeated_cursor_is_an_error_not_a_loop() -> None:
    respx.get(url__startswith=f"{BASE}/children").respond(json=page_of("a", following="same"))
    with pytest.raises(QueryError, match="repeated"):
        paged_client('mode = "cursor"\ncursor_path = "data.next"\n').query(TASK, 5.0)


def test_a_connection_is_opened_only_when_every_one_is_busy() -> None:
    from resumer.faketree import FakeTree
    from tests.helpers import fake_api

    with fake_api(FakeTree(roots=2, fanout=(3,)), latency=0.01) as server:
        http = ClientPool(timeout=10.0)
        statuses = [http.request("GET", f"{server.url}/features").status_code for _ in range(5)]
        assert (http.size, server.stats.connections) == (1, 1)  # one after the other: one

        def calls() -> None:
            for _ in range(5):
                statuses.append(http.request("GET", f"{server.url}/features").status_code)

        threads = [threading.Thread(target=calls) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        made = http.size
        http.close()
        connections = server.stats.connections
    assert statuses == [200] * 20
    assert connections == made <= 3  # never more than the calls at once


def test_every_client_made_sends_the_fixed_headers() -> None:
    http = ClientPool(timeout=10.0)
    http.headers["Authorization"] = "Bearer t"
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        if len(seen) == 1:  # while this call holds the first client, a second one is made
            http.request("GET", f"{BASE}/x")
        return httpx.Response(200, json=[])

    with respx.mock:
        respx.get(f"{BASE}/x").mock(side_effect=answer)
        http.request("GET", f"{BASE}/x")
    made = http.size
    http.close()
    assert made == 2
    assert seen == ["Bearer t", "Bearer t"]
