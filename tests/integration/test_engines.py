"""Both HTTP engines (``[request] engine``) answer alike, against a small scripted server:
redirects (bounded, credentials kept to their origin, a POST's 303 followed by a GET),
compressed bodies, headers read by the pacing and the pagination, cookies, and the
hostile answers (a redirect loop, a status line that is not HTTP, a body cut short).

The server is a raw HTTP/1.1 socket server on 127.0.0.1 (keep-alive), on a thread.
"""

from __future__ import annotations

import gzip
import json
import socketserver
from collections.abc import Iterator

import httpx
import pytest

from resumer.http.pool import Pool
from resumer.http.ratelimits import parse_rate_limits
from tests.helpers import pool_of, serving

AUTH = {"Authorization": "Bearer t0ken"}


class Scripted(socketserver.ThreadingTCPServer):
    """Answers by path; ``/echo`` answers the request it got, as JSON."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.other = ""  # another origin's URL, for a redirect away

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-answer


class _Handler(socketserver.StreamRequestHandler):
    server: Scripted

    def handle(self) -> None:
        while (line := self.rfile.readline()) and line.strip():
            method, target, _ = line.decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (header := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", 0)))
            answer = self._answer(method, target, headers, body)
            if answer is None:
                return
            self.wfile.write(answer)

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> bytes | None:
        path = target.split("?")[0]
        if path == "/echo":
            seen = {"method": method, "target": target, "headers": headers, "body": body.decode()}
            return _ok(json.dumps(seen).encode())
        if path == "/loop":
            return _redirect(302, "/loop")
        if path == "/away":
            return _redirect(302, f"{self.server.other}/echo")
        if path == "/near":
            return _redirect(301, "/echo?near=1")
        if path == "/see-other":
            return _redirect(303, "/echo")
        if path == "/gzip":
            packed = gzip.compress(b'{"items": [1, 2, 3]}')
            return _ok(packed, "Content-Encoding: gzip\r\n")
        if path == "/limits":
            extra = (
                'Link: <http://127.0.0.1/page2>; rel="next"\r\nRetry-After: 7\r\n'
                "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 30\r\nSet-Cookie: s=abc; Path=/\r\n"
            )
            return _ok(b"{}", extra, status="429 Too Many Requests")
        if path == "/html":
            return _ok(b"<html><body>Bad gateway</body></html>", content_type="text/html")
        if path == "/not-http":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            return None
        if path == "/cut":
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a"')
            return None
        return _ok(b"{}", status="404 Not Found")


def _ok(
    body: bytes, extra: str = "", status: str = "200 OK", content_type: str = "application/json"
) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _redirect(status: int, location: str) -> bytes:
    return f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()


def _serve(server: Scripted) -> Iterator[Scripted]:
    with serving(server):
        yield server


@pytest.fixture(scope="module")
def other() -> Iterator[Scripted]:
    yield from _serve(Scripted())


@pytest.fixture(scope="module")
def server(other: Scripted) -> Iterator[Scripted]:
    scripted = Scripted()
    scripted.other = other.url
    yield from _serve(scripted)


@pytest.fixture
def http(engine: str) -> Iterator[Pool]:
    pool = pool_of(engine, timeout=5.0)
    try:
        yield pool
    finally:
        pool.close()


def echoed(response: httpx.Response) -> dict[str, object]:
    seen: dict[str, object] = response.json()
    return seen


def test_a_redirect_loop_ends_in_too_many_redirects(http: Pool, server: Scripted) -> None:
    with pytest.raises(httpx.TooManyRedirects):
        http.request("GET", f"{server.url}/loop")


def test_credentials_follow_a_redirect_on_the_same_origin_only(
    http: Pool, server: Scripted
) -> None:
    near = http.request("GET", f"{server.url}/near", headers=AUTH)
    assert near.status_code == 200 and str(near.url) == f"{server.url}/echo?near=1"
    assert echoed(near)["headers"]["authorization"] == "Bearer t0ken"  # type: ignore[index]
    away = http.request("GET", f"{server.url}/away", headers=AUTH)
    assert away.status_code == 200 and str(away.url).startswith(server.other)
    assert "authorization" not in echoed(away)["headers"]  # type: ignore[operator]


def test_a_post_answered_303_is_followed_by_a_get_without_its_body(
    http: Pool, server: Scripted
) -> None:
    seen = echoed(http.request("POST", f"{server.url}/see-other", json={"id": "A1"}))
    assert (seen["method"], seen["body"]) == ("GET", "")


def test_a_post_sends_its_json_body_compact_and_typed(http: Pool, server: Scripted) -> None:
    seen = echoed(http.request("POST", f"{server.url}/echo", json={"id": "Ä1", "depth": 2}))
    assert seen["method"] == "POST"
    assert json.loads(str(seen["body"])) == {"id": "Ä1", "depth": 2}
    assert seen["headers"]["content-type"] == "application/json"  # type: ignore[index]


def test_the_pool_s_headers_and_the_call_s_are_sent(http: Pool, server: Scripted) -> None:
    http.headers["Accept"] = "application/json"
    http.headers["X-Team"] = "crawl"
    seen = echoed(http.request("GET", f"{server.url}/echo?id=A%201", headers={"X-Team": "b"}))
    headers = seen["headers"]
    assert headers["accept"] == "application/json" and headers["x-team"] == "b"  # type: ignore[index]
    assert "gzip" in headers["accept-encoding"]  # type: ignore[index]
    assert seen["target"] == "/echo?id=A%201"


def test_an_answer_names_the_request_it_answers(http: Pool, server: Scripted) -> None:
    # The curl engine makes an answer's request only when it is asked for (most never are).
    missing = http.request("GET", f"{server.url}/missing?id=A%201&name=b")
    assert missing.request.method == "GET"
    assert missing.url == httpx.URL(f"{server.url}/missing?id=A%201&name=b")
    with pytest.raises(httpx.HTTPStatusError, match=r"404 Not Found.*/missing\?id=A%201&name=b"):
        missing.raise_for_status()
    quoted = http.request("GET", f"{server.url}/echo?q=a b|c")  # sent as httpx quotes it
    assert echoed(quoted)["target"] == "/echo?q=a%20b|c"
    assert quoted.url == httpx.URL(f"{server.url}/echo?q=a%20b|c")
    assert str(http.request("POST", f"{server.url}/see-other").url) == f"{server.url}/echo"


def test_the_rate_limit_headers_are_read_in_any_case_and_others_are_not(
    http: Pool, server: Scripted
) -> None:
    limits = parse_rate_limits(http.request("GET", f"{server.url}/limits").headers)
    assert limits is not None and (limits.remaining, limits.reset) == (0.0, 30.0)
    assert parse_rate_limits(http.request("GET", f"{server.url}/echo").headers) is None


def test_a_compressed_body_is_decoded_once(http: Pool, server: Scripted) -> None:
    response = http.request("GET", f"{server.url}/gzip")
    assert response.json() == {"items": [1, 2, 3]}
    assert response.headers["content-encoding"] == "gzip"


def test_the_headers_pacing_and_pagination_read_are_there(http: Pool, server: Scripted) -> None:
    response = http.request("GET", f"{server.url}/limits")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-ratelimit-reset"] == "30"
    assert response.links["next"]["url"] == "http://127.0.0.1/page2"
    seen = echoed(http.request("GET", f"{server.url}/echo"))  # its cookie comes back
    assert seen["headers"]["cookie"] == "s=abc"  # type: ignore[index]


def test_an_html_page_served_with_200_is_the_body_as_it_is(http: Pool, server: Scripted) -> None:
    response = http.request("GET", f"{server.url}/html")
    assert response.status_code == 200 and response.text.startswith("<html>")


@pytest.mark.parametrize("path", ["/not-http", "/cut"])
def test_an_answer_that_is_not_http_or_is_cut_short_is_a_protocol_error(
    http: Pool, server: Scripted, path: str
) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.request("GET", f"{server.url}{path}")
    assert echoed(http.request("GET", f"{server.url}/echo"))["method"] == "GET"  # goes on
