"""The libcurl engine: ``CurlPool``, the lending pool of ``pool.ClientPool`` with one
libcurl handle (pycurl) per call in flight instead of one httpx client; it answers
``httpx.Response``s and raises httpx's exceptions, so nothing above it changes.

Why: against a fast API the client is CPU-bound, and most of a call's CPU went
to building the request, h11 and httpx's transport glue; a curl handle makes
the same keep-alive call for a fraction of it (README: "Benchmark").

What curl does itself, matching what the httpx engine does:

- the deadline: ``TIMEOUT_MS`` bounds the whole call (connect, send, the whole
  body, every redirect), however slowly the server drips (no watchdog needed);
- redirects: followed by curl, at most ``MAX_REDIRECTS``, to http and https
  only; a POST answered 301, 302 or 303 becomes a GET; ``Authorization`` and
  ``Cookie`` headers are not sent to another origin (scheme, host or port);
- cookies: each handle keeps the ones it is given, as each httpx client does;
- compression: every encoding this libcurl decodes (gzip, deflate, and brotli
  and zstd when built in), HTTP/1.1 keep-alive;
- TLS: ``[request.tls]`` as curl options (``tls_options``); by default the
  system's CA bundle (``system_ca_bundle``) plus ``SSL_CERT_FILE`` /
  ``SSL_CERT_DIR``, the Windows store on Windows;
- proxies: ``request.proxy`` for every call, else ``HTTP_PROXY`` /
  ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` read by httpx's own code and
  matched per origin as httpx matches them.

A TLS failure is raised with an ``ssl`` error behind it, so ``tls.tls_problem``
reads it as it reads the httpx engine's. Importing this module imports pycurl:
``pool.pool_for`` does it only when the job asks for curl.

This module knows nothing of nodes, templates, statuses or what a body means.
"""

from __future__ import annotations

import io
import json as jsonlib
import os
import re
import ssl
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pycurl

from resumer.errors import BodyTooLarge
from resumer.http.pool import URL_SHORTCUTS, EnvironmentProxies, URLs, call_seconds
from resumer.job.settings import Tls

MAX_REDIRECTS = 20  # hops followed at most in one call (httpx's default)
USER_AGENT = f"resumer (libcurl/{pycurl.version_info()[1]})"
_WEB = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
_MAIN = threading.main_thread()

# Where each platform keeps the CAs it trusts, in one PEM file (Go's crypto/x509 looks in the
# same places). The first that exists is curl's trust store; macOS's is its system roots.
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Gentoo, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7 and later
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/ssl/cert.pem",  # macOS, Alpine, OpenBSD
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
)


def system_ca_bundle(candidates: tuple[str, ...] = SYSTEM_CA_FILES) -> str | None:
    """The system's file of trusted CAs (PEM), or None (Windows, or none found)."""
    return next((path for path in candidates if os.path.isfile(path)), None)


def tls_options(tls: Tls, environ: Mapping[str, str] | None = None) -> list[tuple[int, Any]]:
    """The curl options for ``[request.tls]`` (the settings are checked already: the pool
    is made after ``tls.ssl_context``). They apply to an HTTPS proxy too."""
    environ = os.environ if environ is None else environ
    options: list[tuple[int, Any]] = []
    if not tls.verify:
        for option in (pycurl.SSL_VERIFYPEER, pycurl.SSL_VERIFYHOST):
            options.append((option, 0))
        for option in (pycurl.PROXY_SSL_VERIFYPEER, pycurl.PROXY_SSL_VERIFYHOST):
            options.append((option, 0))
    elif tls.ca_bundle is not None:
        options += [(pycurl.CAINFO, str(tls.ca_bundle)), (pycurl.PROXY_CAINFO, str(tls.ca_bundle))]
    else:
        options += _default_trust(environ)
    if tls.client_cert is not None:
        key = tls.client_key or tls.client_cert
        options += [(pycurl.SSLCERT, str(tls.client_cert)), (pycurl.SSLKEY, str(key))]
    return options


def _default_trust(environ: Mapping[str, str]) -> list[tuple[int, Any]]:
    """The system's CAs, plus those of SSL_CERT_FILE / SSL_CERT_DIR when set."""
    if sys.platform == "win32":  # OpenSSL or Schannel, curl reads the Windows store
        native = [(pycurl.SSL_OPTIONS, pycurl.SSLOPT_NATIVE_CA)]
        native.append((pycurl.PROXY_SSL_OPTIONS, pycurl.SSLOPT_NATIVE_CA))
        return native
    options: list[tuple[int, Any]] = []
    system, extra = system_ca_bundle(), environ.get("SSL_CERT_FILE")
    if extra and system and _same_file(extra, system):
        extra = None
    if extra and system:  # curl takes one file: both, as one PEM blob (copied by each handle)
        blob = Path(system).read_bytes() + b"\n" + Path(extra).read_bytes()
        options += [(pycurl.CAINFO_BLOB, blob), (pycurl.PROXY_CAINFO_BLOB, blob)]
    elif extra or system:
        path = extra or system
        options += [(pycurl.CAINFO, path), (pycurl.PROXY_CAINFO, path)]
    if environ.get("SSL_CERT_DIR"):
        options += [(pycurl.CAPATH, environ["SSL_CERT_DIR"])]
        options += [(pycurl.PROXY_CAPATH, environ["SSL_CERT_DIR"])]
    return options


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


class CurlPool:
    """libcurl handles of one keep-alive connection each: a call takes a free one (or
    makes one if none is free) and puts it back when done; each call ends by its
    deadline. The same interface as ``ClientPool``.

    >>> http = CurlPool(timeout=10.0)
    >>> http.headers["Accept"] = "application/json"   # every call sends it
    >>> http.close()
    """

    def __init__(
        self,
        *,
        timeout: float,
        follow_redirects: bool = True,
        tls: Tls | None = None,
        proxy: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_body: int | None = None,
    ) -> None:
        self.headers = httpx.Headers()
        self.max_body = max_body  # bytes: the largest answer body read (None: no cap)
        self.timeout = httpx.Timeout(timeout)
        self._seconds = timeout
        self._free: list[_Handle] = []  # list.pop/append are atomic: no lock needed
        self._made: list[_Handle] = []
        self._lock = threading.Lock()  # for making handles and closing only
        self._closed = False
        self._options = self._common_options(follow_redirects, tls or Tls(), proxy, environ)
        if max_body is not None:  # a Content-Length above it: refused before the body
            self._options.append((pycurl.MAXFILESIZE_LARGE, max_body))
        self._proxy = proxy  # None: the environment's, per origin (``EnvironmentProxies``)
        self._proxies = EnvironmentProxies() if proxy is None else None
        self._urls = URLs()
        self._sent: tuple[list[tuple[bytes, bytes]], dict[bytes, bytes], list[bytes]] = (
            [],
            {},
            [b"Expect:"],
        )

    @staticmethod
    def _common_options(
        follow: bool, tls: Tls, proxy: str | None, environ: Mapping[str, str] | None
    ) -> list[tuple[int, Any]]:
        options: list[tuple[int, Any]] = [
            (pycurl.NOSIGNAL, 1),  # threads: no SIGALRM for name lookups
            (pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1),
            (pycurl.ACCEPT_ENCODING, ""),  # every encoding this libcurl decodes
            (pycurl.PROTOCOLS, _WEB),
            (pycurl.REDIR_PROTOCOLS, _WEB),
            (pycurl.FOLLOWLOCATION, 1 if follow else 0),
            (pycurl.MAXREDIRS, MAX_REDIRECTS),
            (pycurl.COOKIEFILE, ""),  # a cookie jar per handle, in memory
            (pycurl.USERAGENT, USER_AGENT),
            (pycurl.NOPROXY, ""),  # the proxy is chosen here, never by curl's own env reading
            (pycurl.PROXY, proxy or ""),
        ]
        return options + tls_options(tls, environ)

    @property
    def size(self) -> int:
        """Handles made so far: the most calls that were ever in flight at once."""
        return len(self._made)

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        content: Any = None,  # a body as it is (the [auth] token call's form)
    ) -> httpx.Response:
        seconds = self._seconds if timeout is httpx.USE_CLIENT_DEFAULT else call_seconds(timeout)
        # A URL whose path part was parsed before is sent as it is, and parsed again only if
        # its answer's request is asked for; any other is parsed (httpx's errors for bad ones).
        base = self._urls.base_of(url) if URL_SHORTCUTS and isinstance(url, str) else None
        target: httpx.URL | str
        if base is not None:
            target, origin = url, base
        else:
            target = origin = httpx.URL(url)
        if origin.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{origin.scheme}://'.",
                request=httpx.Request(method, target),
            )
        try:
            handle = self._free.pop()
        except IndexError:
            handle = self._new_handle()
        try:
            return handle.call(
                method,
                target,
                self._lines(headers, json is not None, content is not None),
                _body(json, content),
                seconds,
                None if self._proxies is None else self._proxies.of(origin),
                self.max_body,
            )
        finally:
            if self._closed:
                handle.close()
            else:
                self._free.append(handle)

    def _lines(self, headers: Any, is_json: bool, has_content: bool) -> list[bytes]:
        """The header lines a call sends: the pool's, then the call's (a name given again
        replaces it). An empty ``Name:`` line keeps curl from sending its own."""
        raw = self.headers.raw
        if raw != self._sent[0]:  # the pool's headers changed (made once, in practice)
            by_name = {name.lower(): name + b": " + value for name, value in raw}
            self._sent = (raw, by_name, [*by_name.values(), b"Expect:"])
        if not (headers or is_json or has_content):
            return self._sent[2]  # the same list each time: a handle sets it only once
        lines = dict(self._sent[1])
        if is_json:
            lines[b"content-type"] = b"Content-Type: application/json"
        elif has_content:
            lines.setdefault(b"content-type", b"Content-Type:")
        for name, value in httpx.Headers(headers).raw if headers else ():
            lines[name.lower()] = name + b": " + value
        return [*lines.values(), b"Expect:"]

    def _new_handle(self) -> _Handle:
        with self._lock:
            handle = _Handle(self._options)
            self._made.append(handle)
        return handle

    def close(self) -> None:
        """Close the free handles; one still in a call is closed when the call ends."""
        with self._lock:
            self._closed = True
            free, self._free, self._made = self._free, [], []
        for handle in free:
            handle.close()

    def __enter__(self) -> CurlPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _body(json: Any, content: Any) -> bytes | None:
    if json is not None:  # as httpx encodes it
        text = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    if content is None:
        return None
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


class _Handle:
    """One curl handle (one keep-alive connection) and the options it was last given."""

    __slots__ = ("curl", "lines", "main", "method", "milliseconds", "proxy", "sink")

    def __init__(self, options: list[tuple[int, Any]]) -> None:
        self.curl = curl = pycurl.Curl()
        for option, value in options:
            curl.setopt(option, value)
        curl.setopt(pycurl.XFERINFOFUNCTION, _no_progress)  # called only when main is True
        # The callbacks are set once: each call gives the sink a new buffer instead, and
        # the options below are set again only when they change (most calls: the URL only).
        self.sink = _Sink()
        curl.setopt(pycurl.WRITEFUNCTION, self.sink.write)
        curl.setopt(pycurl.HEADERFUNCTION, self.sink.head.append)
        self.main = False
        self.method = "GET"
        self.proxy: str | None = None
        self.lines: list[bytes] | None = None
        self.milliseconds = -1

    def call(
        self,
        method: str,
        target: httpx.URL | str,
        lines: list[bytes],
        body: bytes | None,
        seconds: float | None,
        proxy: str | None,
        cap: int | None = None,
    ) -> httpx.Response:
        """One call to ``target`` (a URL as sent, or parsed by httpx)."""
        curl = self.curl
        url = target if isinstance(target, str) else str(target)
        main = threading.current_thread() is _MAIN
        if main is not self.main:
            # Python runs a signal handler between two bytecodes, not while curl waits: on
            # the main thread, curl calls back (a few times a second when idle) so that
            # Ctrl-C is handled at once; worker threads are spared the calls.
            curl.setopt(pycurl.NOPROGRESS, 0 if main else 1)
            self.main = main
        if method != self.method or body is not None:
            self._method(method, body)
        if proxy != self.proxy:
            curl.setopt(pycurl.PROXY, proxy or "")
            self.proxy = proxy
        curl.setopt(pycurl.URL, url)
        if lines is not self.lines:
            curl.setopt(pycurl.HTTPHEADER, lines)
            self.lines = lines
        milliseconds = 0 if seconds is None else max(1, round(seconds * 1000))
        if milliseconds != self.milliseconds:
            curl.setopt(pycurl.TIMEOUT_MS, milliseconds)
            self.milliseconds = milliseconds
        sink = self.sink
        sink.open(cap)
        try:  # whatever comes of the call, the sink lets go of its answer after it
            try:
                curl.perform()
            except pycurl.error as exc:
                where = curl.getinfo(pycurl.EFFECTIVE_URL) or url
                if cap is not None and int(exc.args[0]) in (_FILESIZE_EXCEEDED, _WRITE_ERROR):
                    too_large = _too_large(int(exc.args[0]), cap, sink.head, sink.size)
                    if too_large is not None:
                        raise too_large from exc
                error = _error(exc, method, where, seconds)
                raise error from (error.__cause__ or exc)
            if curl.getinfo(pycurl.REDIRECT_COUNT):
                target = curl.getinfo(pycurl.EFFECTIVE_URL)
            return _response(method, target, sink.head, sink.body.getvalue())
        finally:
            sink.close()

    def _method(self, method: str, body: bytes | None) -> None:
        curl = self.curl
        if self.method not in ("GET", "POST"):
            curl.unsetopt(pycurl.CUSTOMREQUEST)
        if method == "GET" and body is None:
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            curl.setopt(pycurl.POSTFIELDS, body or b"")  # a POST, even empty
            if method != "POST":
                curl.setopt(pycurl.CUSTOMREQUEST, method)
        self.method = method

    def close(self) -> None:
        self.curl.close()


class _Sink:
    """Where curl writes one call's answer: its head lines, and its body into one buffer
    grown in place (never held twice: ``getvalue`` hands over the buffer itself). With a
    ``cap``, a body written past it is refused (curl then ends the transfer and drops
    the connection), and ``size`` says how much came. A handle keeps its sink between
    calls; ``close`` lets go of the answer, so the handle holds no body after a call."""

    __slots__ = ("body", "cap", "head", "size")

    def __init__(self) -> None:
        self.head: list[bytes] = []
        self.open(None)

    def open(self, cap: int | None) -> None:
        self.body = io.BytesIO()
        self.cap: int | None = cap
        self.size = 0

    def write(self, chunk: bytes) -> int | None:
        self.size += len(chunk)
        if self.cap is not None and self.size > self.cap:
            return 0  # fewer bytes taken than given: curl stops
        self.body.write(chunk)
        return None

    def close(self) -> None:
        self.body.close()
        self.head.clear()


def _too_large(code: int, cap: int, head: list[bytes], size: int) -> BodyTooLarge | None:
    """``BodyTooLarge`` for a transfer curl ended at the cap: refused on its announced
    length (the last answer's ``Content-Length``), or cut once more (``size``) had come."""
    if size > cap:
        error = BodyTooLarge(cap, read=size)
    else:
        lengths = [
            line.split(b":", 1)[1].strip()
            for line in head
            if line[:15].lower() == b"content-length:"
        ]
        if lengths and lengths[-1].isdigit():
            error = BodyTooLarge(cap, announced=int(lengths[-1]))
        elif code == _FILESIZE_EXCEEDED:  # curl stopped a body of no announced length
            error = BodyTooLarge(cap, read=size)
        else:
            return None
    return error


def _no_progress(*_: int) -> None:
    return None


def _response(
    method: str, url: httpx.URL | str, head: list[bytes], content: bytes
) -> httpx.Response:
    """The ``httpx.Response`` of the last answer whose head is in ``head`` (a redirect's,
    a proxy's CONNECT answer and a 100 Continue come before it), its body ``content``
    already decoded (its ``Content-Encoding`` header stays, as httpx keeps it)."""
    start = 0
    for index, line in enumerate(head):
        if line.startswith(b"HTTP/"):
            start = index
    version, _, rest = head[start].rstrip().partition(b" ") if head else (b"HTTP/1.1", b"", b"")
    code, _, reason = rest.partition(b" ")
    fields: list[tuple[bytes, bytes]] = []
    for line in head[start + 1 :]:
        if line[:1] in (b" ", b"\t") and fields:  # an obsolete folded line
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())
            continue
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip(), value.strip()))
    extensions = {"http_version": version, "reason_phrase": reason}
    return _Answer(method, url, int(code), fields, content, extensions)


class _Answer(httpx.Response):
    """An ``httpx.Response`` read whole, whose ``request`` is made when first asked for:
    most answers are read for their status, headers and body alone, and making the
    request (parsing the URL again) was half the cost of the response. It says the
    method and the URL, not the headers and body curl sent."""

    def __init__(
        self,
        method: str,
        url: httpx.URL | str,
        status: int,
        fields: list[tuple[bytes, bytes]],
        content: bytes,
        extensions: dict[str, Any],
    ) -> None:
        super().__init__(status, stream=_NOTHING_SENT, extensions=extensions)
        if _OWN_HEADERS:
            _keep(self.headers, fields)
        else:
            self.headers = httpx.Headers(fields)
        del self._request  # made by __getattr__, the first time it is read
        self._asked = (method, url)
        self._content = content  # read: its stream would decode it a second time
        self.is_stream_consumed = self.is_closed = True

    def __getattr__(self, name: str) -> Any:
        if name != "_request":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        method, url = self._asked
        self._request: httpx.Request | None = httpx.Request(method, url, stream=_NOTHING_SENT)
        return self._request


_NOTHING_SENT = httpx.ByteStream(b"")  # an empty body, shared (nothing is read from it)


def _keep(headers: httpx.Headers, fields: list[tuple[bytes, bytes]]) -> None:
    """Make empty ``headers`` hold ``fields`` as httpx keeps them (each name, its lower
    case, its value: bytes all), without httpx's check of each: a third of the time."""
    headers._list = [(name, name.lower(), value) for name, value in fields]


def _own_headers_work() -> bool:
    """True if this httpx keeps headers as ``_keep`` does: then they equal its own."""
    fields = [(b"Content-Type", b"application/json"), (b"X-Name", "特性".encode())]
    try:
        headers = httpx.Headers()
        _keep(headers, fields)
        same = headers == httpx.Headers(fields) and headers.raw == fields
        return same and headers.multi_items() == httpx.Headers(fields).multi_items()
    except Exception:
        return False


_OWN_HEADERS = _own_headers_work()
# The OpenSSL reason in curl's message ("... SSL routines::tlsv13 alert certificate required").
_VERIFY_RESULT = re.compile(r"(?:verify result|certificate problem): (.*?)(?: \(\d+\))?$")
_SSL_REASON = re.compile(r"SSL routines:[^:]*:([A-Za-z0-9 _]+)")
_TIMEOUT = pycurl.E_OPERATION_TIMEDOUT
_FILESIZE_EXCEEDED = 63  # CURLE_FILESIZE_EXCEEDED: more than MAXFILESIZE announced (or come)
_WRITE_ERROR = pycurl.E_WRITE_ERROR  # the write callback refused: the cap was passed
_CONNECT = {pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST}
_PROXY = {pycurl.E_COULDNT_RESOLVE_PROXY, 97}  # 97: CURLE_PROXY (a SOCKS or CONNECT refusal)
# 1: an answer in HTTP/0.9 (no status line: not HTTP); 8: CURLE_WEIRD_SERVER_REPLY. The
# scheme itself is checked before any call.
_PROTOCOL = {pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_GOT_NOTHING, pycurl.E_PARTIAL_FILE, 8}
_TLS = {pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CACERT}


def _error(exc: pycurl.error, method: str, url: str, seconds: float | None) -> httpx.HTTPError:
    """httpx's exception for a call curl could not make (``exc``: its code and message)."""
    args: tuple[Any, ...] = exc.args
    code, message = int(args[0]), str(args[1]) if len(args) > 1 else str(exc)
    request = httpx.Request(method, url)
    if code == _TIMEOUT:
        return httpx.ReadTimeout(f"no complete answer within {seconds}s (timeout)", request=request)
    cause = _ssl_error(code, message)
    if cause is not None:  # raised from it: ``tls_problem`` reads it
        error: httpx.HTTPError = httpx.ConnectError(message, request=request)
        cause.__cause__ = exc
        error.__cause__ = cause
        return error
    if code == pycurl.E_TOO_MANY_REDIRECTS:
        return httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
    if code in _PROXY or "CONNECT tunnel failed" in message:
        return httpx.ProxyError(message, request=request)
    if code in _CONNECT:
        return httpx.ConnectError(message, request=request)
    if code in _PROTOCOL:
        return httpx.RemoteProtocolError(message, request=request)
    if code == pycurl.E_BAD_CONTENT_ENCODING:
        return httpx.DecodingError(message, request=request)
    if code == pycurl.E_SEND_ERROR:
        return httpx.WriteError(message, request=request)
    return httpx.ReadError(message, request=request)


def _ssl_error(code: int, message: str) -> ssl.SSLError | None:
    """The ``ssl`` error a TLS failure would have raised in Python, for ``tls_problem``."""
    if code == pycurl.E_PEER_FAILED_VERIFICATION or code == pycurl.E_SSL_CACERT:
        said = _VERIFY_RESULT.search(message)
        verify = said.group(1) if said else message.removeprefix("SSL certificate problem: ")
        if "subject name" in message or "does not match" in message:
            verify = f"Hostname mismatch, certificate is not valid ({message})"
        refused = ssl.SSLCertVerificationError(1, f"certificate verify failed: {verify}")
        refused.verify_message = verify
        refused.reason = "CERTIFICATE_VERIFY_FAILED"
        return refused
    found = _SSL_REASON.search(message)
    if found is None:
        return None  # an EOF or a reset mid-handshake: the network's, worth a retry
    if code not in _TLS and code != pycurl.E_RECV_ERROR:
        return None
    reason = found.group(1).strip().upper().replace(" ", "_")
    error = ssl.SSLError(1, message)
    error.reason = reason
    return error
