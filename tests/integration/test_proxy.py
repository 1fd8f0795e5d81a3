"""A crawl through a proxy: by `request.proxy`, by HTTP_PROXY from the environment,
NO_PROXY honoured, proxy credentials kept out of every message and file.

The proxy is a small forwarding proxy on a thread of its own (127.0.0.1) that
counts the calls it forwards, and can ask for Basic credentials (407, or 401 as
tinyproxy answers a wrong password). It opens no tunnel: a CONNECT is only refused.
"""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from resumer import api
from resumer.errors import AuthError, ConfigError, ProxyAuthError
from resumer.fake.server import FakeAPI
from resumer.fake.tree import FakeTree
from tests.helpers import (
    crawl_in_process,
    roots_from_csv,
    serving,
    use_engine,
    write_request_job,
)

TREE = FakeTree(seed=9, roots=3, fanout=(3, 2))
DEPTH = 3
CALLS = TREE.query_count(DEPTH) + 1  # the source list, and one query per node above the leaves
PASSWORD = "pr0xy-s3cret"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Proxy(ThreadingHTTPServer):
    """Forwards absolute-URL requests (``GET http://host/path``), counting them."""

    daemon_threads = True

    def __init__(self, credentials: str | None = None, refusal: int = 407) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.credentials = credentials  # "user:password" required, or None
        self.refusal = refusal  # the status that refuses them
        self.forwarded = 0
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real proxy
    server: Proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_CONNECT(self) -> None:
        if self._refused():
            return
        self._reply(502, b"no tunnels here", [])

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._refused():
            return
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        upstream.request(self.command, f"{target.path}?{target.query}", body, headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        with self.server.lock:
            self.server.forwarded += 1
        self._reply(answer.status, data, [("Content-Type", "application/json")])

    def _refused(self) -> bool:
        """Refuse a call without the credentials, as ``server.refusal`` says; True if so."""
        if self._authorized():
            return False
        with self.server.lock:
            self.server.refused += 1
        # Some proxies quote what they were given: the client must mask it.
        given = self.headers.get("Proxy-Authorization", "").removeprefix("Basic ")
        said = f"proxy credentials refused: {base64.b64decode(given).decode()}".encode()
        if self.server.refusal == 407:
            self._reply(407, said, [("Proxy-Authenticate", "Basic")])
        else:  # tinyproxy's answer to a wrong password
            self._reply(self.server.refusal, said, [("WWW-Authenticate", 'Basic realm="proxy"')])
        return True

    def _authorized(self) -> bool:
        if self.server.credentials is None:
            return True
        given = self.headers.get("Proxy-Authorization", "")
        wanted = base64.b64encode(self.server.credentials.encode()).decode()
        return given == f"Basic {wanted}"

    def _reply(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    yield from _serving(Proxy())


@pytest.fixture
def guarded() -> Iterator[Proxy]:
    yield from _serving(Proxy(credentials=f"crawler:{PASSWORD}"))


@pytest.fixture
def tiny() -> Iterator[Proxy]:
    """A proxy that answers a wrong password with 401, as tinyproxy does."""
    yield from _serving(Proxy(credentials=f"crawler:{PASSWORD}", refusal=401))


def _serving(server: Proxy) -> Iterator[Proxy]:
    with serving(server):
        yield server


@pytest.fixture
def origin() -> Iterator[FakeAPI]:
    with FakeAPI(TREE) as server:
        yield server


@pytest.fixture(autouse=True)
def no_proxy_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def write_proxy_job(folder: Path, url: str, proxy: str | None = None, engine: str = "curl") -> Path:
    line = f'proxy = "{proxy}"\n' if proxy else ""
    return use_engine(write_request_job(folder, url, line, max_depth=DEPTH), engine)


crawl = crawl_in_process


def test_request_proxy_sends_every_call_through_it(
    engine: str, tmp_path: Path, proxy: Proxy, origin: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the key wins over the shell
    assert crawl(
        write_proxy_job(tmp_path, origin.url, proxy.url, engine=engine)
    ) == TREE.expected_export(DEPTH)
    assert proxy.forwarded == origin.stats.received == CALLS


def test_http_proxy_from_the_environment_sends_every_call_through_it(
    engine: str, tmp_path: Path, proxy: Proxy, origin: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert crawl(write_proxy_job(tmp_path, origin.url, engine=engine)) == TREE.expected_export(
        DEPTH
    )
    assert proxy.forwarded == origin.stats.received == CALLS


def test_no_proxy_is_honoured_without_request_proxy(
    engine: str, tmp_path: Path, proxy: Proxy, origin: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert crawl(write_proxy_job(tmp_path, origin.url, engine=engine)) == TREE.expected_export(
        DEPTH
    )
    assert proxy.forwarded == 0 and origin.stats.received == CALLS


def test_proxy_credentials_from_the_environment_stay_out_of_the_checkpoint(
    engine: str, tmp_path: Path, guarded: Proxy, origin: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXY_PASSWORD", PASSWORD)
    address = guarded.url.replace("http://", "http://crawler:${PROXY_PASSWORD}@")
    assert crawl(
        write_proxy_job(tmp_path, origin.url, address, engine=engine)
    ) == TREE.expected_export(DEPTH)
    assert guarded.forwarded == CALLS and guarded.refused == 0
    for path in tmp_path.iterdir():
        if path.name.startswith("r.db"):
            assert PASSWORD.encode() not in path.read_bytes()


def test_a_wrong_proxy_password_is_masked_in_the_errors(
    engine: str, tmp_path: Path, guarded: Proxy, origin: FakeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wr0ng-s3cret"
    address = guarded.url.replace("http://", f"http://crawler:{wrong}@")
    job = write_proxy_job(tmp_path, origin.url, address, engine=engine)
    # A refused proxy is never a node's fault (nor the source's): the run stops, as for a 401.
    with pytest.raises(ProxyAuthError, match=r"request\.proxy") as refused:
        api.run(job, tmp_path / "r.db")
    assert guarded.refused >= 1 and origin.stats.received == 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "407" in str(refused.value) and "407" in logged
    assert wrong not in logged and wrong not in str(refused.value)
    status = api.status(tmp_path / "r.db")
    assert status.state == "stopped" and wrong not in (status.source_error or "")


def test_a_wrong_proxy_password_on_the_queries_stops_the_run_and_fails_no_node(
    engine: str, tmp_path: Path, guarded: Proxy, origin: FakeAPI
) -> None:
    wrong = "wr0ng-s3cret"
    address = guarded.url.replace("http://", f"http://crawler:{wrong}@")
    job = write_proxy_job(tmp_path, origin.url, address, engine=engine)
    roots_from_csv(job, TREE)  # the queries meet the proxy first
    with pytest.raises(ProxyAuthError, match=r"request\.proxy"):
        api.run(job, tmp_path / "r.db")
    status = api.status(tmp_path / "r.db")
    assert status.state == "stopped" and status.totals["failed"] == 0
    assert guarded.refused >= 1 and origin.stats.received == 0


def test_a_401_to_a_connect_is_the_proxy_refusing_its_credentials(
    engine: str, tmp_path: Path, tiny: Proxy
) -> None:
    # Only the proxy answers a CONNECT: its 401 stops the run as its 407 would (retried as a
    # network error, the nodes would wait on the breaker for ever).
    address = tiny.url.replace("http://", "http://crawler:wr0ng@")
    job = write_proxy_job(tmp_path, "https://127.0.0.1:9", address, engine=engine)
    roots_from_csv(job, TREE)  # the queries meet the proxy first
    with pytest.raises(ProxyAuthError, match=r"401.*request\.proxy|request\.proxy.*401"):
        api.run(job, tmp_path / "r.db")
    status = api.status(tmp_path / "r.db")
    assert status.state == "stopped" and status.totals["failed"] == 0
    assert tiny.refused >= 1


def test_a_401_through_a_plain_http_proxy_names_its_credentials_too(
    engine: str, tmp_path: Path, tiny: Proxy, origin: FakeAPI
) -> None:
    # A 401 to a plain GET may be the API's or the proxy's: the stop names both places.
    address = tiny.url.replace("http://", "http://crawler:wr0ng@")
    job = write_proxy_job(tmp_path, origin.url, address, engine=engine)
    with pytest.raises(AuthError) as refused:
        api.run(job, tmp_path / "r.db")
    assert "check the user and password in request.proxy" in str(refused.value)
    assert "wr0ng" not in str(refused.value) and origin.stats.received == 0


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("ftp://me:pw-123@127.0.0.1:3128", "must start with http://"),
        ("http://me:pw-123@127.0.0.1:99999", "port"),
        ("http://me:pw-123@/", "no host"),
    ],
)
def test_a_bad_proxy_url_is_refused_at_load_without_its_password(
    tmp_path: Path, proxy: str, problem: str
) -> None:
    job = write_proxy_job(tmp_path, "http://127.0.0.1:9", proxy)
    with pytest.raises(ConfigError) as refused:
        api.run(job, tmp_path / "r.db")
    message = str(refused.value)
    assert "request.proxy" in message and problem in message
    assert "pw-123" not in message and "me:***@" in message
