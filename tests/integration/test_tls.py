"""HTTPS with a private CA: `[request.tls]` ca_bundle, SSL_CERT_FILE, verify = false,
client certificates (mutual TLS), and the message when the CA is not trusted.

The certificates are made here by ``trustme``; the fake API is served over TLS
on 127.0.0.1 (``FakeAPI(tls=...)``).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from resumer import api
from resumer.errors import ConfigError
from resumer.fake.server import FakeAPI
from resumer.fake.tree import FakeTree
from tests.helpers import (
    crawl_in_process,
    resumer,
    roots_from_csv,
    serving,
    use_engine,
    write_request_job,
)

TREE = FakeTree(seed=5, roots=3, fanout=(3, 2))
DEPTH = 3


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if client_certs:  # mutual TLS: a certificate from the same CA, or no handshake
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def https(ca: trustme.CA) -> Iterator[FakeAPI]:
    with FakeAPI(TREE, tls=server_context(ca)) as server:
        yield server


@pytest.fixture
def mutual(ca: trustme.CA) -> Iterator[FakeAPI]:
    with FakeAPI(TREE, tls=server_context(ca, client_certs=True)) as server:
        yield server


def write_tls_job(folder: Path, url: str, tls: str = "", engine: str = "curl") -> Path:
    extra = f"[request.tls]\n{tls}" if tls else ""
    return use_engine(write_request_job(folder, url, extra, max_depth=DEPTH), engine)


crawl = crawl_in_process


def test_a_private_ca_is_trusted_with_ca_bundle(
    engine: str, tmp_path: Path, ca: trustme.CA, https: FakeAPI
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "corp-ca.pem"))
    job = write_tls_job(
        tmp_path, https.url, 'ca_bundle = "corp-ca.pem"\n', engine=engine
    )  # relative
    assert crawl(job) == TREE.expected_export(DEPTH)
    assert https.stats.received == TREE.query_count(DEPTH) + 1  # the source too


def test_a_private_ca_is_trusted_with_ssl_cert_file(
    engine: str, tmp_path: Path, ca: trustme.CA, https: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "corp-ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "corp-ca.pem"))
    assert crawl(write_tls_job(tmp_path, https.url, engine=engine)) == TREE.expected_export(DEPTH)


def test_verify_false_crawls_and_warns_at_start(
    engine: str, tmp_path: Path, https: FakeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="resumer.http.tls"):
        assert crawl(write_tls_job(tmp_path, https.url, "verify = false\n", engine=engine)) == (
            TREE.expected_export(DEPTH)
        )
    warnings = [r for r in caplog.records if "verify = false" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


@pytest.mark.parametrize("layout", ["one file", "cert and key"])
def test_mutual_tls_presents_the_client_certificate(
    engine: str, tmp_path: Path, ca: trustme.CA, mutual: FakeAPI, layout: str
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("crawler@example.com")
    if layout == "one file":
        client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
        keys = 'client_cert = "client.pem"\n'
    else:
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
        client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        keys = 'client_cert = "client.crt"\nclient_key = "client.key"\n'
    job = write_tls_job(tmp_path, mutual.url, f'ca_bundle = "ca.pem"\n{keys}', engine=engine)
    assert crawl(job) == TREE.expected_export(DEPTH)


def test_an_untrusted_ca_fails_with_one_line_naming_the_fix(
    engine: str, tmp_path: Path, https: FakeAPI
) -> None:
    job = write_tls_job(
        tmp_path, https.url, engine=engine
    )  # the system's store: it lacks the test CA
    done = resumer("start", job, "--db", "r.db", cwd=tmp_path, timeout=60)
    assert done.returncode == 2  # the run stops: every call would fail the same way
    assert "Traceback" not in done.stderr + done.stdout
    assert "certificate verify failed" in done.stderr
    assert "[request.tls] ca_bundle" in done.stderr
    assert "resume with: resumer resume --db r.db" in done.stderr
    assert https.stats.received == 0  # refused at the handshake: no request was read
    state = api.status(tmp_path / "r.db")
    assert (state.state, state.failed) == ("stopped", 0)


class HandshakeOnly:
    """A TLS server that only shakes hands, on a thread of its own: unlike asyncio's, a
    blocking server sends its alert (certificate required) before it hangs up."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.refusals: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # shut down
            conn.settimeout(10)
            # The handshake is made apart from the wrapping: a socket wrapped with it is
            # closed at once when it fails, and closing with the client's request unread
            # sends a reset that may overtake the alert.
            with self.context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            ) as tls:
                try:
                    tls.do_handshake()
                    tls.recv(1)
                except (ssl.SSLError, OSError) as exc:
                    self.refusals.append(str(exc))
                    _linger(tls)

    def __enter__(self) -> HandshakeOnly:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.listener.close()
        self.thread.join(10)


def _linger(tls: ssl.SSLSocket) -> None:
    """Close as web servers do (nginx's lingering close): say "no more" and read what the
    client still sends until it hangs up, so that closing sends no reset, which would
    destroy the alert on its way (a client that sent its request early, as libcurl does
    after its side of a TLS 1.3 handshake, would read a reset instead of the alert). A
    TLS socket shut down reads its connection's raw bytes."""
    try:
        tls.shutdown(socket.SHUT_WR)
        while tls.recv(65536):
            pass
    except OSError:
        pass  # the client hung up first


def test_a_server_wanting_a_client_certificate_names_client_cert(
    engine: str, tmp_path: Path, ca: trustme.CA
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with HandshakeOnly(server_context(ca, client_certs=True)) as server:
        job = write_tls_job(tmp_path, server.url, 'ca_bundle = "ca.pem"\n', engine=engine)
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert "[request.tls] client_cert" in done.stderr
    # Refused once: no retry mends a missing certificate. (A server that closes without
    # lingering may reset the connection before libcurl reads the alert, which then reads
    # as a network error and is retried: README, "The HTTP engine". This one lingers.)
    assert len(server.refusals) == 1


class _NoCertificateSent(BaseHTTPRequestHandler):
    """nginx with ``ssl_verify_client optional``-like checks: the handshake passes, and every
    call without a certificate gets its 400 page."""

    protocol_version = "HTTP/1.1"
    page = b"<html><head><title>400 No required SSL certificate was sent</title></head></html>"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    server: _CallCounting

    def do_GET(self) -> None:
        self.server.calls += 1
        self.send_response(400)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)


class _CallCounting(ThreadingHTTPServer):
    calls = 0  # calls answered


@pytest.fixture
def nginx_wanting_a_certificate(ca: trustme.CA) -> Iterator[_CallCounting]:
    server = _CallCounting(("127.0.0.1", 0), _NoCertificateSent)
    server.socket = server_context(ca).wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server


def test_a_400_saying_no_certificate_came_stops_the_run_and_fails_no_node(
    engine: str, tmp_path: Path, ca: trustme.CA, nginx_wanting_a_certificate: _CallCounting
) -> None:
    # Every call would get the same page: the run stops (exit 2) instead of failing each node.
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port = nginx_wanting_a_certificate.server_address[1]
    job = write_tls_job(tmp_path, f"https://127.0.0.1:{port}", 'ca_bundle = "ca.pem"\n', engine)
    roots_from_csv(job, TREE)  # the queries meet the refusal
    done = resumer("start", job, "--db", "r.db", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "the server wants a client certificate: [request.tls] client_cert" in done.stderr
    status = api.status(tmp_path / "r.db")
    assert status.state == "stopped" and status.totals["failed"] == 0
    assert nginx_wanting_a_certificate.calls >= 1


def test_a_missing_ca_bundle_is_refused_at_load_naming_the_key(tmp_path: Path) -> None:
    job = write_tls_job(tmp_path, "https://127.0.0.1:9", 'ca_bundle = "nowhere.pem"\n')
    done = resumer("start", job, "--db", "r.db", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "request.tls.ca_bundle" in done.stderr and "nowhere.pem" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists()


def test_a_file_that_is_not_pem_is_refused_before_the_database(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("not a certificate\n")
    job = write_tls_job(tmp_path, "https://127.0.0.1:9", 'client_cert = "client.pem"\n')
    with pytest.raises(ConfigError, match=r"\[request.tls\] client_cert"):
        api.run(job, tmp_path / "r.db")
    assert not (tmp_path / "r.db").exists()
