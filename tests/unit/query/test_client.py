"""One query over HTTP (respx): request shapes, error classes, status classification."""

from __future__ import annotations

import json
import threading
from urllib.parse import urlencode

import httpx
import pytest
import respx

from resumer.errors import AuthError, ProxyAuthError, QueryError, TlsError
from resumer.http.pool import ClientPool
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.model import Item, Task
from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.gate import CallOutcome, Gate
from resumer.query.client import Client, _query_string

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=2, id="A 1/x", name="Alpha", type="core", parent_id="P1")


def make_client(extra: str = "", env: dict[str, str] | None = None, **request: str) -> Client:
    lines = "".join(f"{k} = {v}\n" for k, v in request.items())
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n{lines}'
        f'[response]\nitems = "data.items"\n{extra}'
    )
    job = parse_job(text, "job.toml")
    return Client(bind(job, env or {}), ClientPool(timeout=10.0))


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
    client = Client(bind(parse_job(job_text, "job.toml"), {}), httpx.Client())
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
def test_a_source_in_link_pages_is_read_to_its_last_page() -> None:
    # json-server, GitHub: the level-1 list in pages, each naming the next in a Link header.
    first = f"{BASE}/features?_page=1&_limit=2"
    nxt = f'<{BASE}/features?_page=2&_limit=2>; rel="next", <{first}>; rel="first"'
    respx.get(first).respond(json=[{"id": "r1"}, {"id": "r2"}], headers={"Link": nxt})
    last = respx.get(f"{BASE}/features?_page=2&_limit=2").respond(json=[{"id": "r3"}])
    text = (
        f'[source]\nurl = "{first}"\n[request]\nurl = "{BASE}/children"\n'
        '[response]\nitems = ""\n[response.pagination]\nmode = "link"\n'
    )
    client = Client(bind(parse_job(text, "job.toml"), {}), ClientPool(timeout=10.0))
    assert [item.id for item in client.load_roots()] == ["r1", "r2", "r3"]
    assert last.call_count == 1


@respx.mock
def test_a_source_is_one_call_in_page_mode() -> None:
    # Page numbers are the children's: a source URL is not sent them (it may not page).
    route = respx.get(url__startswith=f"{BASE}/features").respond(json=items_body({"id": "r1"}))
    client = make_client('[response.pagination]\nmode = "page"\nsize = 1\n')
    assert [item.id for item in client.load_roots()] == ["r1"]
    assert route.call_count == 1 and str(route.calls.last.request.url) == f"{BASE}/features"


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
            Client(bind(job, {}), httpx.Client(), gate).query(TASK, 5.0)
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
            Client(bind(job, {}), httpx.Client(), gate).query(TASK, 5.0)
    assert (gate.kinds, caught.value.throttled, caught.value.transient) == (
        ["throttle"],
        True,
        True,
    )


def test_sizes_are_written_as_people_write_them() -> None:
    from resumer.query.client import size_text

    assert [size_text(n) for n in (256 * 1024**2, 800_000_000, 2048, 11_234, 999)] == [
        "256 MiB",
        "800 MB",
        "2 KiB",
        "11.2 kB",
        "999 bytes",
    ]


NGINX_NO_CERT = (
    b"<html><head><title>400 No required SSL certificate was sent</title></head><body>"
    b"<center><h1>400 Bad Request</h1></center></body></html>"
)


NGINX_BAD_CERT = (
    b"<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n<body>\r\n"
    b"<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("status", "body", "hint"),
    [
        (400, NGINX_NO_CERT, "wants a client certificate"),  # ssl_verify_client on, none sent
        (496, b"SSL Certificate Required", "wants a client certificate"),
        (400, NGINX_BAD_CERT, "refused the client certificate"),  # one it does not trust
        (495, b'{"error": "cert"}', "refused the client certificate"),  # an error_page's
        (400, b'{"code": 400, "msg": "bad id"}', None),
        (400, b'{"msg": "host F1: SSL certificate error (expired)"}', None),  # one node's
    ],
)
@respx.mock
def test_a_server_wanting_a_client_certificate_after_the_handshake_stops_the_run(
    status: int, body: bytes, hint: str | None
) -> None:
    # Every call would get the same answer: a TlsError stops the run, naming the key.
    respx.get(f"{BASE}/children").respond(status, content=body)
    with pytest.raises((TlsError, QueryError)) as refused:
        make_client().query(TASK, 5.0)
    assert isinstance(refused.value, TlsError) is (hint is not None)
    if hint is not None:
        assert f"{hint}: [request.tls] client_cert" in str(refused.value)


@respx.mock
def test_a_body_quoted_in_an_error_is_one_line_with_no_control_character() -> None:
    # nginx's pages end their lines with CRLF: a carriage return shown on a terminal would
    # write over the start of the line.
    body = b"<html>\r\n<body>\tbad\x1b[2J  gateway</body>\r\n</html>\r\n"
    respx.get(f"{BASE}/children").respond(502, content=body)
    with pytest.raises(QueryError) as failed:
        make_client().query(TASK, 5.0)
    assert str(failed.value).endswith("<html> <body> bad\\x1b[2J gateway</body> </html>")


@pytest.mark.parametrize(
    "said",
    [
        "CONNECT tunnel failed, response 407",  # curl, an HTTP proxy refusing the CONNECT
        "407 Proxy Authentication Required",  # httpx, the same
        "CONNECT tunnel failed, response 401",  # curl, tinyproxy refusing a wrong password
        "401 Unauthorized",  # httpx, the same (only the proxy answers a CONNECT)
        "User was rejected by the SOCKS5 server (1 2).",  # curl, SOCKS5 with a wrong password
        "No authentication method was acceptable.",  # curl, SOCKS5 wanting credentials
        "Invalid username/password",  # httpx (socksio), SOCKS5 with a wrong password
        "Requested NO AUTHENTICATION REQUIRED from proxy server, but got NO ACCEPTABLE METHODS.",
    ],
)
@respx.mock
def test_a_proxy_refusing_its_credentials_stops_the_run_instead_of_failing_nodes(
    said: str,
) -> None:
    # Every call would be refused so: retried as a network error, the breaker would keep
    # the nodes pending for ever. A stop, naming request.proxy, never its password.
    respx.get(url__startswith=f"{BASE}/children").mock(side_effect=httpx.ProxyError(said))
    client = make_client(
        proxy='"http://me:${PROXY_PASSWORD}@127.0.0.1:3128"', env={"PROXY_PASSWORD": "pw-9"}
    )
    with pytest.raises(ProxyAuthError, match=r"request\.proxy") as refused:
        client.query(TASK, 5.0)
    assert said.rstrip(".") in str(refused.value) and "pw-9" not in str(refused.value)


@respx.mock
def test_a_407_answer_stops_the_run_and_leaves_the_proxy_s_page_out() -> None:
    page = "<html>Cache Access Denied: me:pw-9 ... squid</html>"  # a plain-HTTP proxy's 407
    respx.get(url__startswith=f"{BASE}/children").respond(407, text=page)
    client = make_client(
        proxy='"http://me:${PROXY_PASSWORD}@127.0.0.1:3128"', env={"PROXY_PASSWORD": "pw-9"}
    )
    with pytest.raises(ProxyAuthError, match=r"HTTP 407 .*request\.proxy|request\.proxy.*HTTP 407"):
        client.query(TASK, 5.0)


@pytest.mark.parametrize("proxied", [True, False])
@respx.mock
def test_a_401_through_a_proxy_names_the_proxy_s_credentials_too(
    proxied: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a plain-HTTP proxy, a 401 may be the proxy's own refusal (tinyproxy's answer to
    # a wrong password): the line says where to look in either case, only when proxied.
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")  # a proxy setting, but no proxy
    respx.get(url__startswith=f"{BASE}/children").respond(401, text="Unauthorized")
    client = make_client(proxy='"http://me:pw@127.0.0.1:3128"') if proxied else make_client()
    with pytest.raises(AuthError, match="no \\[auth\\] to renew them") as refused:
        client.query(TASK, 5.0)
    assert ("check the user and password in request.proxy" in str(refused.value)) is proxied


@respx.mock
def test_other_proxy_errors_stay_transient() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=httpx.ProxyError("CONNECT tunnel failed, response 502")
    )
    with pytest.raises(QueryError) as caught:
        make_client().query(TASK, 5.0)
    assert caught.value.transient and not isinstance(caught.value, ProxyAuthError)


@pytest.mark.parametrize(
    "params",
    [
        {"id": "f-1.2_x~", "name": "Feature 1", "type": "beta"},
        {"id": "特征/一", "name": "a&b=c+d%", "type": ""},
        {"名 字": "x y", "page": 3},  # a page number: urlencode's own way
        {"id": "a\u00e9\U0001f600", "sp ace": "tab\there"},
    ],
)
def test_the_query_string_is_urlencode_s_to_the_character(params: dict[str, object]) -> None:
    assert _query_string(params) == urlencode(params)
