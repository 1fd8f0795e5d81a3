"""The connection pool every HTTP call goes through, and its TLS and proxy wiring.

``ClientPool`` lends one httpx client (one connection) per call and ends every
call by its deadline (with ``deadline.Watchdog``); ``pool_for`` builds the pool
a job's run uses (its timeout, TLS settings and proxy). ``HTTP`` is what the
rest of resumer needs of an HTTP side: a ``ClientPool`` or an ``httpx.Client``.

This module knows nothing of nodes, requests' templates, statuses or response
bodies (``query``), nor of the database, the worker threads or retries.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import ssl
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpcore
import httpx
from httpcore import NetworkBackend
from httpx._utils import URLPattern, get_environment_proxies

from resumer.errors import BodyTooLarge
from resumer.http.deadline import NEVER, Watch, Watchdog
from resumer.http.tls import ssl_context
from resumer.job.bound import BoundJob
from resumer.job.settings import Tls

log = logging.getLogger(__name__)


def read_capped(response: httpx.Response, limit: int | None) -> None:
    """Read ``response``'s body (``response.read()``), but never more than ``limit``
    bytes of it (None: no limit): ``BodyTooLarge``, the response closed, beyond."""
    if limit is None:
        response.read()
        return
    length = response.headers.get("content-length", "")
    try:
        if length.isdigit() and int(length) > limit:
            raise BodyTooLarge(limit, announced=int(length))
        # One buffer grown in place, not pieces joined: the body is never held twice
        # (``getvalue`` hands over the buffer itself, cut to size).
        received, size = io.BytesIO(), 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit, read=size)
            received.write(chunk)
    except BaseException:
        response.close()
        raise
    response._content = received.getvalue()  # what ``read`` keeps: ``content`` gives it
    response.close()


class HTTP(Protocol):
    """What ``Client`` needs of its HTTP side: an ``httpx.Client`` or a ``ClientPool``."""

    @property
    def headers(self) -> httpx.Headers: ...

    @property
    def timeout(self) -> httpx.Timeout: ...

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = ...,
        headers: Any = ...,
        timeout: Any = ...,
        content: Any = ...,
    ) -> httpx.Response: ...


class Pool(HTTP, Protocol):
    """An engine's pool (``ClientPool``, ``curl.CurlPool``): the calls, and its closing."""

    @property
    def size(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> Pool: ...

    def __exit__(self, *exc: object) -> None: ...


class ClientPool:
    """httpx clients of one connection each: a call takes a free one (or makes one if
    none is free), and puts it back when done; every call ends by its deadline.

    Why not one shared ``httpx.Client``: threads sharing it queue on its pool's
    lock, and its pool scans every connection for every request. With 64
    threads, a crawl on a shared client took 3.5 times the time and CPU it takes
    here (``bench/crawl.py``). A client is made only when every one is busy, so
    there are never more connections than calls once were in flight at once:
    the gate's cap (``http_concurrency``) caps the connections too.

    ``timeout`` (or a call's own) is a deadline for the whole call: connect,
    send, the whole body and every redirect, however slowly the server drips
    its answer. httpx bounds each operation only, so the pool's one
    ``Watchdog`` thread shuts down the socket of a call still running at its
    deadline (the socket is noted through httpcore's ``trace`` extension when
    the connection is made), and the call raises ``httpx.ReadTimeout``.

    >>> http = ClientPool(timeout=10.0)
    >>> http.headers["Accept"] = "application/json"   # every client made gets it
    >>> http.close()
    """

    def __init__(
        self,
        *,
        timeout: float,
        follow_redirects: bool = True,
        watchdog: Watchdog | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
        max_body: int | None = None,
    ) -> None:
        self.headers = httpx.Headers()
        self.max_body = max_body  # bytes: the largest answer body read (None: no cap)
        self.timeout = httpx.Timeout(timeout)
        self._seconds = timeout
        self._follow_redirects = follow_redirects
        self._free: list[_Pooled] = []  # list.pop/append are atomic: no lock needed
        self._made: list[_Pooled] = []
        self._lock = threading.Lock()  # for making clients only
        self._tls = ssl_context  # made once (``tls.ssl_context``): each costs 20 ms and 1 MB
        self._proxy = proxy  # None: the environment's HTTP(S)_PROXY / NO_PROXY (trust_env)
        self._watchdog = watchdog or Watchdog()  # its clock times the calls
        self._clock = self._watchdog.clock
        self._timeouts = self.timeout.as_dict()  # the extension of a call on the default
        self._urls = URLs()

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
        try:
            pooled = self._free.pop()
        except IndexError:
            pooled = self._new_client()
        watch, watchdog = pooled.watch, self._watchdog
        deadline = NEVER if seconds is None else self._clock() + seconds
        watchdog.start(watch, deadline)
        try:
            response = self._send(pooled, method, url, json, content, headers, timeout)
            response = self._follow(pooled.client, response, deadline, seconds)
        except BaseException as exc:
            overdue = watchdog.stop(watch)
            self._free.append(pooled)
            if overdue and isinstance(exc, Exception):
                raise _overdue(seconds, exc) from exc
            raise
        watchdog.stop(watch)  # before the client is free: the next call's watch is its own
        self._free.append(pooled)
        return response

    def _send(
        self,
        pooled: _Pooled,
        method: str,
        url: str,
        json: Any,
        content: Any,
        headers: Any,
        timeout: Any,
    ) -> httpx.Response:
        """The first hop: the request the client would build, sent through its transport.

        ``Client.send`` costs 60-160 us a call in what the pool never uses (auth
        flows, hooks, cookie bookkeeping, the redirect loop) and ``build_request``
        parses every URL whole; here the path part's parse is shared (``URLs``) and
        the request goes straight to the transport the client would pick (its proxy
        mount, its TLS). A URL with credentials, a client holding cookies, or an httpx
        without the two client methods used here take the client's own way.
        """
        client = pooled.client
        extensions = pooled.extensions
        parsed = self._urls.parse(url) if URL_SHORTCUTS and isinstance(url, str) else None
        if parsed is None or client.cookies:
            request = client.build_request(
                method,
                url,
                json=json,
                content=content,
                headers=headers,
                timeout=timeout,
                extensions=extensions,
            )
            response = client.send(request, stream=True)  # they follow no redirect themselves
            read_capped(response, self.max_body)
            return response
        merged = client.headers.copy()
        if headers:
            merged.update(headers)
        timeouts = (
            self._timeouts
            if timeout is httpx.USE_CLIENT_DEFAULT
            else httpx.Timeout(timeout).as_dict()
        )
        request = httpx.Request(
            method,
            parsed,
            headers=merged,
            json=json,
            content=content,
            extensions={**extensions, "timeout": timeouts},
        )
        try:
            response = client._transport_for_url(parsed).handle_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as the client's ``request_context`` does
            raise
        response.request = request
        read_capped(response, self.max_body)
        if "set-cookie" in response.headers:  # rare: the client's jar keeps them
            client.cookies.extract_cookies(response)
        if response.has_redirect_location:
            response.next_request = client._build_redirect_request(request, response)
        return response

    def _follow(
        self,
        client: httpx.Client,
        response: httpx.Response,
        deadline: float,
        seconds: float | None,
    ) -> httpx.Response:
        """``response``'s redirects followed, within the call's one deadline."""
        if response.next_request is None or not self._follow_redirects:
            return response
        history = [response]
        while (request := response.next_request) is not None:
            if len(history) > client.max_redirects:
                raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
            if deadline != NEVER:  # each hop's operations get what is left of the call's time
                left = deadline - self._clock()
                if left <= 0:
                    raise _overdue(seconds, None, request)
                timeouts = httpx.Timeout(left).as_dict()
                request.extensions = {**request.extensions, "timeout": timeouts}
            response = client.send(request, stream=True)
            read_capped(response, self.max_body)
            history.append(response)
        response.history = history[:-1]
        return response

    @property
    def size(self) -> int:
        """Clients made so far: the most calls that were ever in flight at once."""
        return len(self._made)

    def _new_client(self) -> _Pooled:
        with self._lock:
            if self._tls is None:
                self._tls = ssl_context(Tls())
            client = httpx.Client(
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=self.timeout,
                headers=self.headers,
                follow_redirects=False,  # followed by ``_send``, within the call's deadline
                verify=self._tls,
                proxy=self._proxy,
            )
            pooled = _Pooled(client)
            self._made.append(pooled)
        return pooled

    def close(self) -> None:
        with self._lock:
            made, self._made, self._free = self._made, [], []
        for pooled in made:
            pooled.client.close()
        self._watchdog.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_for(bound: BoundJob, **options: Any) -> Pool:
    """The pool a run of the job calls through, on the job's engine (``request.engine``):
    its timeout, TLS settings and proxy (``options``: the rest of ``ClientPool``'s, for the
    httpx engine). ``ConfigError`` for a certificate file that cannot be used. Without
    pycurl, the curl engine is httpx's, and one WARNING says so."""
    job = bound.job
    context = ssl_context(job.request.tls, origin=job.origin)  # checks the files on both
    # The largest body any level may read: a level's own, smaller, cap is the client's.
    cap = max([job.request.max_body, *(level.max_body for level in job.levels.values())])
    if job.request.engine == "curl" and not options:
        curl = _curl_module()
        if curl is not None:
            pool: Pool = curl.CurlPool(
                timeout=job.request.timeout, tls=job.request.tls, proxy=bound.proxy, max_body=cap
            )
            return pool
    return ClientPool(
        timeout=job.request.timeout,
        ssl_context=context,
        proxy=bound.proxy,
        max_body=cap,
        **options,
    )


_warned = threading.Event()  # the missing pycurl is said once a process


def _curl_module() -> Any:
    """``resumer.http.curl`` (which imports pycurl), or None when pycurl cannot be imported."""
    try:
        from resumer.http import curl
    except ImportError as exc:
        if not _warned.is_set():
            _warned.set()
            log.warning(
                '[request] engine = "curl": pycurl cannot be imported (%s); the calls go '
                'through httpx (pip install pycurl, or engine = "httpx" to silence this)',
                exc,
            )
        return None
    return curl


class _Pooled:
    """One client of a ``ClientPool`` (one connection), and the watch on its calls."""

    __slots__ = ("client", "extensions", "watch")

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.watch = Watch()
        # The sockets are noted where the connections are made (``_NotingBackend``); with
        # an httpcore where that cannot be wired, by the trace hook, at some 25 us a call.
        noted = _note_sockets(client, self.watch)
        self.extensions: dict[str, Any] = {} if noted else {"trace": self._trace}

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook: notes the socket of every connection the client opens
        (``connect_tcp`` and ``start_tls`` return the stream; nothing else does)."""
        stream = info.get("return_value")
        if isinstance(stream, httpcore.NetworkStream):
            self.watch.attach(stream.get_extra_info("socket"))


def _note_sockets(client: httpx.Client, watch: Watch) -> bool:
    """Have every connection ``client`` makes (its own, its proxies') note its socket in
    ``watch``, through the network backend of each transport's httpcore pool. False if
    some transport's pool has no backend to wrap (then the trace hook does it)."""
    mounts = getattr(client, "_mounts", {})
    transports = [getattr(client, "_transport", None), *mounts.values()]
    pools: list[Any] = [getattr(t, "_pool", None) for t in transports if t is not None]
    backends = [getattr(pool, "_network_backend", None) for pool in pools]
    wired = [(p, b) for p, b in zip(pools, backends, strict=True) if isinstance(b, NetworkBackend)]
    if len(wired) < len(pools):
        return False
    for pool, backend in wired:
        pool._network_backend = _NotingBackend(backend, watch)
    return True


class _NotingBackend(httpcore.NetworkBackend):
    """httpcore's network backend, noting the socket of each connection it opens in a
    ``Watch`` (and the TLS socket that replaces it: ``_NotingStream``)."""

    def __init__(self, backend: httpcore.NetworkBackend, watch: Watch) -> None:
        self._backend = backend
        self._watch = watch

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _NotingStream(stream, self._watch)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, timeout, socket_options)
        return _NotingStream(stream, self._watch)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _NotingStream(httpcore.NetworkStream):
    """A connection's stream whose socket is in the watch (a dripping server's read is
    cut by shutting it down); ``start_tls`` notes the TLS socket that replaces it."""

    def __init__(self, stream: httpcore.NetworkStream, watch: Watch) -> None:
        self._stream = stream
        self._watch = watch
        self.read = stream.read  # type: ignore[method-assign]  # no layer on the hot path
        self.write = stream.write  # type: ignore[method-assign]
        watch.attach(stream.get_extra_info("socket"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _NotingStream(stream, self._watch)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


# A query made of these characters only is one httpx keeps as it is (a subset of its
# QUERY_SAFE, with %XX escapes): no second look needed. ``urlencode`` makes only these.
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_URL_CACHE = 256  # distinct paths whose parse is kept (one, usually: the children URL)
_MAX_URL = 65536  # characters: httpx refuses longer URLs (with its own message)


class URLs:
    """``httpx.URL``s made from a parse of their path part shared by every call to it.

    Parsing a URL whole costs about 25 us in httpx (every character checked,
    each component quoted); a crawl sends one path with a different query each
    time, and the queries ``urlencode`` makes are already in httpx's canonical
    form. ``parse`` returns None for anything it is not sure of (a fragment, a
    query with other characters, credentials in the URL): the caller then lets
    httpx parse it whole.
    """

    def __init__(self) -> None:
        self._bases: dict[str, httpx.URL | None] = {}

    def parse(self, url: str) -> httpx.URL | None:
        base = self.base_of(url)
        if base is None:
            return None
        _, mark, query = url.partition("?")
        made = httpx.URL.__new__(httpx.URL)
        made._uri_reference = base._uri_reference._replace(query=query if mark else None)
        return made

    def base_of(self, url: str) -> httpx.URL | None:
        """The parse of ``url`` without its query (shared), when ``url`` is one ``parse``
        is sure of: ``parse(url)`` then equals ``httpx.URL(url)``."""
        base, mark, query = url.partition("?")
        try:
            parsed = self._bases[base]
        except KeyError:
            parsed = self._base(base)
        if parsed is None or (mark and not _PLAIN_QUERY.fullmatch(query)) or len(url) > _MAX_URL:
            return None
        return parsed

    def _base(self, base: str) -> httpx.URL | None:
        try:
            parsed: httpx.URL | None = httpx.URL(base)
        except (httpx.InvalidURL, TypeError):
            parsed = None
        if parsed is not None and ("#" in base or parsed.userinfo or not parsed.is_absolute_url):
            parsed = None  # the client's way: its errors, its auth from the URL
        if len(self._bases) >= _URL_CACHE:
            self._bases.clear()
        self._bases[base] = parsed
        return parsed


def _shortcuts_work() -> bool:
    """True if this httpx has what ``ClientPool._send`` and ``URLs`` rely on (a URL made
    from a shared parse equals httpx's own, the client's transport and redirect methods)."""
    sample = "http://example.com:8080/a%20b/c?id=R1.2&name=A+b%2F&type="
    try:
        made = URLs().parse(sample)
        same = made is not None and made == httpx.URL(sample) and str(made) == sample
    except Exception:
        return False
    client = httpx.Client
    return (
        same
        and callable(getattr(client, "_transport_for_url", None))
        and callable(getattr(client, "_build_redirect_request", None))
    )


URL_SHORTCUTS = _shortcuts_work()


def call_seconds(timeout: Any) -> float | None:
    """A call's deadline in seconds from its httpx timeout; None for no deadline."""
    if isinstance(timeout, httpx.Timeout):
        parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
        return max(parts) if parts else None
    return None if timeout is None else float(timeout)


def _overdue(
    seconds: float | None, exc: Exception | None, request: httpx.Request | None = None
) -> httpx.ReadTimeout:
    """The error of a call cut short at its deadline (``exc``: how the cut showed)."""
    if request is None and isinstance(exc, httpx.RequestError):
        with contextlib.suppress(RuntimeError):  # no request attached
            request = exc.request
    return httpx.ReadTimeout(f"no complete answer within {seconds}s (timeout)", request=request)


_ORIGINS = 1024  # origins whose proxy is remembered


class EnvironmentProxies:
    """The proxy of each origin from the environment (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY, read once), by httpx's own reading and matching of them: the
    curl engine's proxies, and the client's telling whether a call went through one."""

    def __init__(self) -> None:
        mounts = [(URLPattern(key), url) for key, url in get_environment_proxies().items()]
        self._patterns = sorted(mounts, key=lambda mount: mount[0])  # as an httpx.Client
        self._known: dict[tuple[str, str, int | None], str | None] = {}

    def of(self, url: httpx.URL) -> str | None:
        """The proxy URL for ``url``, or None to go direct."""
        origin = (url.scheme, url.host, url.port)
        try:
            return self._known[origin]
        except KeyError:
            pass
        proxy = next((p for pattern, p in self._patterns if pattern.matches(url)), None)
        if len(self._known) < _ORIGINS:
            self._known[origin] = proxy
        return proxy
