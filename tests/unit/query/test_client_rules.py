"""The client with ``[[response.rule]]``s: each outcome goes through the path that already
exists for it (a status's, a 401's, a stop's), and the API's own message is what the
error says.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pytest

from resumer.errors import AuthError, QueryError, StopError
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.model import Item, Task
from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.gate import CallOutcome, Gate
from resumer.query.client import Client

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=2, id="F1", name="支付网关", type="core", parent_id="")
RULES = """
[[response.rule]]
status = [404]
then = "empty"
[[response.rule]]
field = "code"
in = [500]
then = "retry"
[[response.rule]]
field = "code"
in = [429]
then = "throttle"
wait = "data.retryAfter"
[[response.rule]]
field = "code"
in = [401]
then = "renew"
[[response.rule]]
field = "code"
in = [999]
then = "stop"
[[response.rule]]
status = [202]
then = "ok"
[[response.rule]]
field = "code"
not_in = [0]
then = "fail"
"""
Handler = Callable[[httpx.Request], httpx.Response]


class RecordingGate(Gate):
    """A gate that keeps each call's outcome, as the policies see it."""

    def __init__(self) -> None:
        super().__init__(stop=threading.Event(), limiter=ConcurrencyLimiter(8))
        self.outcomes: list[CallOutcome] = []
        self.observers.append(lambda level, outcome, seconds: self.outcomes.append(outcome))


def make_client(handler: Handler, extra: str = "", response: str = "") -> Client:
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n{extra}'
        f'[response]\nitems = "data.list"\nmessage = "msg"\n{response}{RULES}'
    )
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return Client(bind(parse_job(text, "job.toml"), {}), http, RecordingGate())


def answer(status: int, document: object) -> Handler:
    body = json.dumps(document, ensure_ascii=False).encode()
    return lambda request: httpx.Response(status, content=body)


def outcomes(client: Client) -> list[tuple[str, int | None, str | None, float | None]]:
    assert isinstance(client.gate, RecordingGate)
    return [(o.kind, o.rule, o.then, o.retry_after) for o in client.gate.outcomes]


def test_empty_completes_the_node_with_no_children() -> None:
    client = make_client(answer(404, {"code": 404, "msg": "没有子特性"}))
    assert client.query(TASK, 5.0) == []
    assert outcomes(client) == [("success", 1, "empty", None)]


def test_retry_is_a_transient_failure_with_the_apis_message() -> None:
    client = make_client(answer(200, {"code": 500, "msg": "系统繁忙", "data": {"list": []}}))
    with pytest.raises(QueryError) as caught:
        client.query(TASK, 5.0)
    error = caught.value
    assert (error.transient, error.throttled) == (True, False)
    assert str(error).startswith("rule 2 (retry) on HTTP 200 from GET http://127.0.0.1:9/")
    assert str(error).endswith(": 系统繁忙")
    assert outcomes(client) == [("failure", 2, "retry", None)]


def test_throttle_waits_as_long_as_the_body_says() -> None:
    client = make_client(
        answer(200, {"code": "429", "msg": "请求过于频繁", "data": {"retryAfter": 3}})
    )
    with pytest.raises(QueryError) as caught:
        client.query(TASK, 5.0)
    assert (caught.value.transient, caught.value.throttled, caught.value.retry_after) == (
        True,
        True,
        3.0,
    )
    assert outcomes(client) == [("throttle", 3, "throttle", 3.0)]


def test_a_throttle_without_a_wait_in_the_body_honours_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 429}, headers={"Retry-After": "7"})

    with pytest.raises(QueryError) as caught:
        make_client(handler).query(TASK, 5.0)
    assert caught.value.retry_after == 7.0


def test_fail_is_permanent() -> None:
    client = make_client(answer(200, {"code": 403, "msg": "无权限访问该特性", "data": None}))
    with pytest.raises(QueryError, match=r"rule 7 \(fail\) .*: 无权限访问该特性$") as caught:
        client.query(TASK, 5.0)
    assert not caught.value.transient
    assert outcomes(client) == [("permanent", 7, "fail", None)]


def test_ok_reads_the_items_whatever_the_status() -> None:
    client = make_client(answer(202, {"data": {"list": [{"id": "c1", "name": "n"}]}}))
    assert client.query(TASK, 5.0) == [Item("c1", "n", "", '{"id":"c1","name":"n"}')]


def test_no_rule_matching_leaves_the_answer_to_its_status() -> None:
    client = make_client(answer(200, {"code": 0, "data": {"list": [{"id": "c1"}]}}))
    assert [item.id for item in client.query(TASK, 5.0)] == ["c1"]
    assert outcomes(client) == [("success", None, None, None)]


def test_stop_raises_the_error_that_stops_the_run_with_the_apis_words() -> None:
    client = make_client(answer(200, {"code": 999, "msg": "系统维护中"}))
    with pytest.raises(
        StopError, match=r"^rule 5 \(stop\) on HTTP 200 .*the API said: 系统维护中$"
    ):
        client.query(TASK, 5.0)


def test_renew_renews_the_token_once_and_sends_again() -> None:
    tokens: list[str] = []
    refused: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            tokens.append(f"tok-{len(tokens) + 1}")
            return httpx.Response(200, json={"access_token": tokens[-1], "expires_in": 3600})
        if request.headers["Authorization"] == "Bearer tok-1":
            refused.append(request.headers["Authorization"])
            return httpx.Response(200, json={"code": 401, "msg": "令牌已过期"})
        return httpx.Response(200, json={"code": 0, "data": {"list": [{"id": "c1"}]}})

    auth = (
        f'[auth]\ntype = "oauth2"\ntoken_url = "{BASE}/token"\n'
        'client_id = "app"\nclient_secret = "${SECRET}"\n'
    )
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n'
        f'[response]\nitems = "data.list"\nmessage = "msg"\n{RULES}{auth}'
    )
    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(bind(parse_job(text, "job.toml"), {"SECRET": "s"}), http)
    assert [item.id for item in client.query(TASK, 5.0)] == ["c1"]
    assert (tokens, refused) == (["tok-1", "tok-2"], ["Bearer tok-1"])


def test_renew_without_auth_stops_the_run_with_the_apis_words() -> None:
    client = make_client(answer(200, {"code": 401, "msg": "请先登录"}))
    with pytest.raises(AuthError, match=r"^rule 4 \(renew\) on HTTP 200 from .*: 请先登录$"):
        client.query(TASK, 5.0)


def test_empty_ends_the_pages_and_keeps_the_items_before_it() -> None:
    pages = [
        {"code": 0, "data": {"list": [{"id": "a"}], "next": "c1"}},
        {"code": 0, "data": None},  # the last "page": a node whose children ran out
    ]
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(str(request.url.params.get("cursor", "")))
        return httpx.Response(200, json=pages[len(served) - 1])

    pagination = '[response.pagination]\nmode = "cursor"\ncursor_path = "data.next"\n'
    empty_on_null = '[[response.rule]]\nfield = "data"\nmissing = true\nthen = "empty"\n'
    client = make_client(handler, response=pagination + empty_on_null)
    assert [item.id for item in client.query(TASK, 5.0)] == ["a"]
    assert served == ["", "c1"]


def test_a_field_rule_never_matches_a_body_that_is_not_json() -> None:
    client = make_client(lambda request: httpx.Response(200, content=b"<html>busy</html>"))
    with pytest.raises(QueryError, match=r"body is not JSON") as caught:
        client.query(TASK, 5.0)
    assert not caught.value.transient
