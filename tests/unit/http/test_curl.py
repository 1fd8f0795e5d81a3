from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

pycurl = pytest.importorskip("pycurl")

from resumer.http import curl  # noqa: E402  (after the skip: it imports pycurl)
from resumer.http.tls import tls_problem  # noqa: E402
from resumer.job.settings import Tls  # noqa: E402


def test_the_system_bundle_is_the_first_file_that_exists(tmp_path: Path) -> None:
    (tmp_path / "second.pem").write_text("pem")
    (tmp_path / "third.pem").write_text("pem")
    candidates = tuple(str(tmp_path / name) for name in ("first.pem", "second.pem", "third.pem"))
    assert curl.system_ca_bundle(candidates) == str(tmp_path / "second.pem")
    assert curl.system_ca_bundle(candidates[:1]) is None


def test_verify_false_checks_neither_the_server_nor_a_proxy() -> None:
    options = dict(curl.tls_options(Tls(verify=False), environ={}))
    assert options[pycurl.SSL_VERIFYPEER] == options[pycurl.SSL_VERIFYHOST] == 0
    assert options[pycurl.PROXY_SSL_VERIFYPEER] == 0
    assert pycurl.CAINFO not in options


def test_a_ca_bundle_replaces_the_system_store(tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    options = dict(curl.tls_options(Tls(ca_bundle=bundle), environ={"SSL_CERT_FILE": "/x.pem"}))
    assert options[pycurl.CAINFO] == options[pycurl.PROXY_CAINFO] == str(bundle)
    assert pycurl.CAINFO_BLOB not in options


@pytest.mark.skipif(curl.system_ca_bundle() is None, reason="no system CA bundle here")
def test_ssl_cert_file_is_trusted_beside_the_system_store(tmp_path: Path) -> None:
    extra = tmp_path / "extra.pem"
    extra.write_bytes(b"-----EXTRA-----\n")
    options = dict(curl.tls_options(Tls(), environ={"SSL_CERT_FILE": str(extra)}))
    blob = options[pycurl.CAINFO_BLOB]
    assert blob.endswith(b"-----EXTRA-----\n") and len(blob) > len(b"-----EXTRA-----\n") + 1
    plain = dict(curl.tls_options(Tls(), environ={"SSL_CERT_DIR": str(tmp_path)}))
    assert plain[pycurl.CAINFO] == curl.system_ca_bundle()
    assert plain[pycurl.CAPATH] == str(tmp_path)


def test_a_client_certificate_without_a_key_file_holds_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    options = dict(curl.tls_options(Tls(verify=False, client_cert=cert), environ={}))
    assert options[pycurl.SSLCERT] == options[pycurl.SSLKEY] == str(cert)
    key = tmp_path / "client.key"
    both = dict(curl.tls_options(Tls(verify=False, client_cert=cert, client_key=key), {}))
    assert both[pycurl.SSLKEY] == str(key)


def test_the_last_answer_of_a_redirect_is_the_response() -> None:
    head = [
        b"HTTP/1.1 302 Found\r\n",
        b"Location: /b\r\n",
        b"\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"Content-Type: application/json\r\n",
        b"Content-Encoding: gzip\r\n",
        b"X-Folded: one\r\n",
        b"  two\r\n",
        b"Set-Cookie: a=1\r\n",
        b"Set-Cookie: b=2\r\n",
        b"\r\n",
    ]
    url = httpx.URL("http://api.example/b")
    response = curl._response("GET", url, head, b'{"ok": true}')
    assert (response.status_code, response.reason_phrase) == (200, "OK")
    assert response.json() == {"ok": True}  # decoded already: not decoded a second time
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["x-folded"] == "one two"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert "location" not in response.headers
    assert response.url == url and response.request.method == "GET"


@pytest.mark.parametrize("own", [True, False])
def test_an_answer_s_headers_are_httpx_s_whichever_way_they_are_made(
    own: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert curl._OWN_HEADERS  # this httpx keeps headers as the short way makes them
    monkeypatch.setattr(curl, "_OWN_HEADERS", own)
    head = [b"HTTP/1.1 200 OK\r\n", b"X-RateLimit-Limit: 10\r\n", b"Set-Cookie: a=1\r\n", b"\r\n"]
    response = curl._response("GET", "http://api.example/x", head, b"{}")
    expected = httpx.Headers([(b"X-RateLimit-Limit", b"10"), (b"Set-Cookie", b"a=1")])
    assert response.headers == expected and response.headers.raw == expected.raw
    assert response.headers["x-ratelimit-limit"] == "10" and "set-cookie" in response.headers


def _curl_error(code: int, message: str) -> httpx.HTTPError:
    return curl._error(pycurl.error(code, message), "GET", "https://api.example/x", 2.0)


def test_a_timeout_is_httpx_s_timeout_naming_the_deadline() -> None:
    error = _curl_error(pycurl.E_OPERATION_TIMEDOUT, "Operation timed out after 2001 ms")
    assert isinstance(error, httpx.TimeoutException)
    assert "no complete answer within 2.0s" in str(error)
    assert str(error.request.url) == "https://api.example/x"


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (pycurl.E_COULDNT_CONNECT, "Failed to connect to api.example port 443", httpx.ConnectError),
        (pycurl.E_COULDNT_RESOLVE_HOST, "Could not resolve host: api.example", httpx.ConnectError),
        (pycurl.E_GOT_NOTHING, "Empty reply from server", httpx.RemoteProtocolError),
        (8, "Unsupported HTTP version in response", httpx.RemoteProtocolError),
        (pycurl.E_PARTIAL_FILE, "end of response with 10 bytes missing", httpx.RemoteProtocolError),
        (pycurl.E_RECV_ERROR, "Recv failure: Connection reset by peer", httpx.ReadError),
        (pycurl.E_TOO_MANY_REDIRECTS, "Maximum (20) redirects followed", httpx.TooManyRedirects),
        (56, "CONNECT tunnel failed, response 407", httpx.ProxyError),
        (pycurl.E_COULDNT_RESOLVE_PROXY, "Could not resolve proxy: p", httpx.ProxyError),
        (pycurl.E_BAD_CONTENT_ENCODING, "Error while processing content", httpx.DecodingError),
    ],
)
def test_curl_errors_are_httpx_s(code: int, message: str, kind: type[httpx.HTTPError]) -> None:
    error = _curl_error(code, message)
    assert type(error) is kind
    assert tls_problem(error) is None  # none of them is a TLS failure


def test_an_unknown_ca_reads_as_the_httpx_engine_s_tls_problem() -> None:
    message = "SSL certificate OpenSSL verify result: unable to get local issuer certificate (20)"
    error = _curl_error(pycurl.E_PEER_FAILED_VERIFICATION, message)
    assert isinstance(error, httpx.ConnectError)
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
    problem = tls_problem(error)
    assert problem is not None
    assert problem.startswith("certificate verify failed: unable to get local issuer certificate")
    assert "[request.tls] ca_bundle" in problem


def test_a_host_name_mismatch_names_the_url_fix() -> None:
    message = "SSL: no alternative certificate subject name matches target hostname 'api.example'"
    problem = tls_problem(_curl_error(pycurl.E_PEER_FAILED_VERIFICATION, message))
    assert problem is not None and "use the host name the certificate was issued for" in problem


def test_a_refused_handshake_names_client_cert() -> None:
    message = "OpenSSL/3.0: error:0A00045C:SSL routines::tlsv13 alert certificate required"
    problem = tls_problem(_curl_error(pycurl.E_RECV_ERROR, message))
    assert problem is not None and "[request.tls] client_cert" in problem
    plain = "OpenSSL/3.0: error:0A00010B:SSL routines::wrong version number"
    said = tls_problem(_curl_error(pycurl.E_SSL_CONNECT_ERROR, plain))
    assert said is not None and "try http://" in said


def test_a_url_with_another_scheme_is_refused_before_any_call() -> None:
    with curl.CurlPool(timeout=1.0) as http, pytest.raises(httpx.UnsupportedProtocol):
        http.request("GET", "ftp://files.example/x")
    assert http.size == 0


@pytest.mark.skipif(curl.system_ca_bundle() is None, reason="no system CA bundle here")
def test_ssl_cert_file_naming_the_system_bundle_is_read_once() -> None:
    system = curl.system_ca_bundle()
    options = dict(curl.tls_options(Tls(), environ={"SSL_CERT_FILE": str(system)}))
    assert options[pycurl.CAINFO] == system and pycurl.CAINFO_BLOB not in options
