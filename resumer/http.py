"""The connection pool every HTTP call goes through, and its TLS and proxy wiring.

``ClientPool`` lends one httpx client (one connection) per call and ends every
call by its deadline (with ``deadline.Watchdog``); ``pool_for`` builds the pool
a job's run uses (its timeout, TLS settings and proxy). ``HTTP`` is what the
rest of resumer needs of an HTTP side: a ``ClientPool`` or an ``httpx.Client``.

This module knows nothing of nodes, requests' templates, statuses or response
bodies (``client.py``), nor of the database, the worker threads or retries.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import httpcore
import httpx

from resumer.deadline import NEVER, Watch, Watchdog
from resumer.settings import Job, Tls
from resumer.template import Template
from resumer.tls import ssl_context


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
    ) -> None:
        self.headers = httpx.Headers()
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
        seconds = self._seconds if timeout is httpx.USE_CLIENT_DEFAULT else _seconds(timeout)
        try:
            pooled = self._free.pop()
        except IndexError:
            pooled = self._new_client()
        watch, watchdog = pooled.watch, self._watchdog
        deadline = NEVER if seconds is None else self._clock() + seconds
        watchdog.start(watch, deadline)
        try:
            client = pooled.client
            request = client.build_request(
                method,
                url,
                json=json,
                content=content,
                headers=headers,
                timeout=timeout,
                extensions=pooled.extensions,
            )
            response = self._send(client, request, deadline, seconds)
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
        client: httpx.Client,
        request: httpx.Request,
        deadline: float,
        seconds: float | None,
    ) -> httpx.Response:
        """``request`` sent, and its redirects followed, within the one deadline."""
        response = client.send(request)  # the clients follow no redirect themselves
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
            response = client.send(request)
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


def pool_for(job: Job, env: Mapping[str, str], **options: Any) -> ClientPool:
    """The pool a run of ``job`` calls through: its timeout, TLS settings and proxy
    (``options``: the rest of ``ClientPool``'s). ``ConfigError`` for a certificate file
    that cannot be used."""
    return ClientPool(
        timeout=job.request.timeout,
        ssl_context=ssl_context(job.request.tls, origin=job.origin),
        proxy=proxy_for(job, env),
        **options,
    )


def proxy_for(job: Job, env: Mapping[str, str]) -> str | None:
    """``request.proxy`` with its ``${VAR}``s filled; None: the environment's proxies."""
    proxy = job.request.proxy
    return Template.compile(proxy).bind_env(env).render({}) if proxy else None


class _Pooled:
    """One client of a ``ClientPool`` (one connection), and the watch on its calls."""

    __slots__ = ("client", "extensions", "watch")

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.watch = Watch()
        self.extensions = {"trace": self._trace}  # for every request: httpx copies it

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook: notes the socket of every connection the client opens
        (``connect_tcp`` and ``start_tls`` return the stream; nothing else does)."""
        stream = info.get("return_value")
        if isinstance(stream, httpcore.NetworkStream):
            self.watch.attach(stream.get_extra_info("socket"))


def _seconds(timeout: Any) -> float | None:
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
