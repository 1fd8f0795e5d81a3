"""The pool's own way to send (the client's transport, prebuilt URLs): every call sends
what ``httpx.Client`` would have sent, and takes the client's way where it must."""

from __future__ import annotations

import threading

import httpx
import pytest
import respx

from resumer.errors import BodyTooLarge
from resumer.fake.tree import FakeTree
from resumer.http.pool import ClientPool, EnvironmentProxies, URLs, read_capped
from tests.helpers import fake_api

BASE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/children?id=R01.02&name=Feature+R01.02&type=core",
        f"{BASE}/children?id=a%2Fb&name=%C3%A9t%C3%A9&type=",
        f"{BASE}/children",
        f"{BASE}/children?",
        "https://Example.COM:443/a%20b/c?x=1",
        "http://example.com:8080/v1/nodes/A%201/children?level=2",
    ],
)
def test_a_url_made_from_a_shared_parse_is_the_one_httpx_parses(url: str) -> None:
    urls = URLs()
    for _ in range(2):  # the first parse of the path, then the shared one
        made = urls.parse(url)
        assert made is not None
        assert made == httpx.URL(url)
        assert str(made) == str(httpx.URL(url))
        assert made.raw_path == httpx.URL(url).raw_path


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/children?name=été",  # not in httpx's canonical form: httpx quotes it
        f"{BASE}/children?name=a b",
        f"{BASE}/children#part?x=1",
        "http://user:pw@127.0.0.1:9/children?x=1",  # the client's basic auth from the URL
        "/children?x=1",
        "http://[::1/children",
    ],
)
def test_urls_the_shortcut_is_not_sure_of_are_left_to_httpx(url: str) -> None:
    assert URLs().parse(url) is None


def test_a_call_sends_the_client_headers_and_the_call_headers() -> None:
    http = ClientPool(timeout=5.0)
    http.headers["X-Fixed"] = "1"
    with respx.mock:
        route = respx.get(f"{BASE}/c").respond(200, json={})
        http.request("GET", f"{BASE}/c?id=1", headers={"X-Node": "n1"})
    http.close()
    sent = route.calls.last.request
    assert sent.headers["X-Fixed"] == "1"
    assert sent.headers["X-Node"] == "n1"
    assert sent.headers["Host"] == "127.0.0.1:9"
    assert sent.headers["User-Agent"].startswith("python-httpx/")
    assert sent.extensions["timeout"] == httpx.Timeout(5.0).as_dict()


def test_a_json_body_and_a_call_timeout_go_as_the_client_would_send_them() -> None:
    http = ClientPool(timeout=5.0)
    with respx.mock:
        route = respx.post(f"{BASE}/c").respond(200, json={})
        response = http.request("POST", f"{BASE}/c", json={"id": "é"}, timeout=2.0)
    http.close()
    sent = route.calls.last.request
    assert sent.content == httpx.Request("POST", BASE, json={"id": "é"}).content
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.extensions["timeout"] == httpx.Timeout(2.0).as_dict()
    assert response.request.url == sent.url
    assert response.json() == {}


def test_cookies_a_server_sets_are_sent_back_on_that_connection() -> None:
    http = ClientPool(timeout=5.0)
    with respx.mock:
        route = respx.get(f"{BASE}/c").respond(200, json={}, headers={"Set-Cookie": "s=42"})
        http.request("GET", f"{BASE}/c?n=1")
        http.request("GET", f"{BASE}/c?n=2")
    http.close()
    assert "Cookie" not in route.calls[0].request.headers
    assert route.calls[1].request.headers["Cookie"] == "s=42"


def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    http = ClientPool(timeout=5.0)
    with respx.mock:
        route = respx.get("http://127.0.0.1:9/c").respond(200, json={})
        http.request("GET", "http://user:pw@127.0.0.1:9/c?x=1")
    http.close()
    expected = httpx.BasicAuth("user", "pw").auth_flow(httpx.Request("GET", BASE))
    assert (
        route.calls.last.request.headers["Authorization"] == next(expected).headers["Authorization"]
    )


def test_a_transport_error_carries_its_request() -> None:
    http = ClientPool(timeout=5.0)
    with respx.mock:
        respx.get(f"{BASE}/c").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(httpx.ConnectError) as raised:
            http.request("GET", f"{BASE}/c?id=1")
    http.close()
    assert str(raised.value.request.url) == f"{BASE}/c?id=1"


def test_a_connection_is_opened_only_when_every_one_is_busy() -> None:
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


# -- the cap on a body ----------------------------------------------------------------


def streamed(body: bytes, *, announce: bool) -> httpx.Response:
    """A response whose body is still to be read, in chunks of 100 bytes."""
    chunks = [body[i : i + 100] for i in range(0, len(body), 100)]
    headers = {"Content-Length": str(len(body))} if announce else {}
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(b"".join(chunks)))


@pytest.mark.parametrize("announce", [True, False])
def test_a_body_past_the_cap_is_refused_and_one_within_it_read(announce: bool) -> None:
    small = streamed(b"x" * 1000, announce=announce)
    read_capped(small, 1000)
    assert small.content == b"x" * 1000
    big = streamed(b"x" * 1001, announce=announce)
    with pytest.raises(BodyTooLarge) as refused:
        read_capped(big, 1000)
    assert refused.value.limit == 1000
    assert (refused.value.announced, refused.value.read) == (
        (1001, None) if announce else (None, 1001)
    )
    assert big.is_closed


def test_without_a_cap_the_body_is_read_whole() -> None:
    response = streamed(b"y" * 5000, announce=False)
    read_capped(response, None)
    assert response.content == b"y" * 5000


def test_the_pool_refuses_a_body_past_its_cap_and_goes_on() -> None:
    with fake_api(FakeTree(seed=3, roots=40, fanout=(2,))) as server:
        pool = ClientPool(timeout=5.0, max_body=500)
        try:
            with pytest.raises(BodyTooLarge):
                pool.request("GET", f"{server.url}/features")  # 40 roots: some 2 kB
            answer = pool.request("GET", f"{server.url}/children?id=F1")
        finally:
            pool.close()
    assert answer.status_code == 200 and len(answer.content) <= 500


def test_environment_proxies_are_matched_per_origin_as_httpx_matches_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@proxy.corp:3128")
    monkeypatch.setenv("HTTPS_PROXY", "socks5h://proxy.corp:1080")
    monkeypatch.setenv("NO_PROXY", "internal.corp,127.0.0.1")
    proxies = EnvironmentProxies()
    assert proxies.of(httpx.URL("http://api.example/x")) == "http://user:pw@proxy.corp:3128"
    assert proxies.of(httpx.URL("https://api.example/x")) == "socks5h://proxy.corp:1080"
    assert proxies.of(httpx.URL("http://db.internal.corp/x")) is None
    assert proxies.of(httpx.URL("http://127.0.0.1:8808/x")) is None
