"""One query: render the request for a node, send it, map the body to child items.

Also loads the level-1 nodes from the job's source (a URL read like any
response, or a .csv/.json/.jsonl file). Errors come out as ``QueryError``
(``transient`` when a retry may help) or, for a bad source file,
``ConfigError``; every message carries the status, the URL and the start of
the body, with secrets masked. Every HTTP call ends by its deadline
(``ClientPool``, with ``deadline.Watchdog``).

This module knows nothing of the database, the worker threads or retries.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import email.utils
import json
import math
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpcore
import httpx

from resumer import logs
from resumer.auth import AuthorizedHTTP, authorizer_for
from resumer.config import Job, Pagination, Response, Tls
from resumer.deadline import NEVER, Watch, Watchdog
from resumer.errors import AuthError, ConfigError, QueryError, ResumerError, TlsError
from resumer.model import Item, Task
from resumer.paging import Pager
from resumer.policies import ConcurrencyLimiter, Gate, RateLimits
from resumer.policies.gate import FAILURE, PERMANENT, SUCCESS, THROTTLE
from resumer.template import PLACEHOLDERS, Redactor, Template, quote_segment
from resumer.tls import ssl_context, tls_problem

BODY_EXCERPT = 200  # characters of a response body kept in an error message
MAX_PAGES = 100_000  # pages of one node's children at most: a runaway cursor ends here
_NO_NODE = dict.fromkeys(PLACEHOLDERS, "")  # placeholder values for the source call

_Render = Callable[[Mapping[str, str]], Any]


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


def _compile_json(value: Any, env: Mapping[str, str]) -> _Render:
    """A function rendering a templated JSON value; a string that is exactly ``{level}`` → int."""
    if isinstance(value, Mapping):
        parts = [(key, _compile_json(item, env)) for key, item in value.items()]
        return lambda values: {key: render(values) for key, render in parts}
    if isinstance(value, tuple | list):
        items = [_compile_json(item, env) for item in value]
        return lambda values: [render(values) for render in items]
    if isinstance(value, str):
        template = Template.compile(value).bind_env(env)
        if template.only_placeholder() == "level":
            return lambda values: int(values["level"])
        return template.render
    return lambda values: value


class Client:
    """Queries the children endpoint for nodes, on a shared ``httpx.Client``.

    >>> client = Client(job, env, ClientPool(timeout=10.0))  # doctest: +SKIP
    >>> client.query(Task(7, 1, "A1", "Alpha", "core", ""))  # doctest: +SKIP
    [Item(id='A1.1', name='...', type='...', payload='{...}'), ...]
    """

    def __init__(
        self, job: Job, env: Mapping[str, str], http: HTTP, gate: Gate | None = None
    ) -> None:
        request = job.request
        self.job = job
        self.http = http
        self.gate = gate or Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(1 << 30))
        self.redactor = Redactor(job.secrets(env))
        # [auth]: the Authorization value and its renewal; None: a 401 stops the run at once.
        self.auth = authorizer_for(
            job, env, http, stop=self.gate.stop, protect=self._protect, redact=self.redactor.redact
        )
        if self.auth is not None:
            self.http = http = AuthorizedHTTP(http, self.auth)
        self._retry_on = job.retry.retry_on
        self._method = request.method
        self._url = Template.compile(request.url).bind_env(env)
        self._params = {k: Template.compile(v).bind_env(env) for k, v in request.params.items()}
        self._body = _compile_json(request.body, env) if request.body is not None else None
        headers = {k: Template.compile(v).bind_env(env) for k, v in request.headers.items()}
        # Fixed headers go on the shared client once; only templated ones travel per call.
        http.headers.update({k: t.render({}) for k, t in headers.items() if t.is_literal})
        self._node_headers = {k: t for k, t in headers.items() if not t.is_literal}
        self._mapper = Mapper(job.response)
        self._pages = job.response.pagination
        self._pacing = job.rate.adaptive  # read rate-limit headers
        self._timeout_args: dict[float, Any] = {}
        if job.source.url is not None:
            self._source_url = Template.compile(job.source.url).bind_env(env).render({})

    def _headers(self, values: Mapping[str, str]) -> dict[str, str] | None:
        if not self._node_headers:
            return None
        return {k: t.render(values) for k, t in self._node_headers.items()}

    def query(self, task: Task, timeout: float) -> list[Item]:
        """``task``'s children: one HTTP call, or one per page when the API paginates."""
        values = {
            "id": task.id,
            "name": task.name,
            "type": task.type,
            "level": str(task.level),
            "parent_id": task.parent_id,
        }
        url = self._url.render(values, quote_segment)
        params = {k: t.render(values) for k, t in self._params.items()}
        body = self._body(values) if self._body is not None else None
        headers = self._headers(values)
        if self._pages is None:
            document = self._call(
                self._method, _with_query(url, params), body, headers, timeout, task.level
            )
            return self._items(document, self._method, url)
        return self._all_pages(self._pages, url, params, body, headers, timeout, task.level)

    def _all_pages(
        self,
        pages: Pagination,
        url: str,
        params: dict[str, str],
        body: Any,
        headers: dict[str, str] | None,
        timeout: float,
        level: int,
    ) -> list[Item]:
        """Every page, in order; any failure fails the whole query (nothing is kept)."""
        items: list[Item] = []
        pager = Pager(pages, self.redactor.redact, lookup)
        for _ in range(MAX_PAGES):
            if pager.next_url is not None:  # link and next_url modes, after the first page
                call_url, call_body = pager.next_url, body
            elif self._method == "GET" or not isinstance(body, dict):
                call_url, call_body = _with_query(url, {**params, **pager.extra()}), body
            else:
                call_url, call_body = _with_query(url, params), {**body, **pager.extra()}
            answers: list[httpx.Response] = []
            document = self._call(
                self._method, call_url, call_body, headers, timeout, level, answers.append
            )
            found = self._items(document, self._method, call_url)
            items += found
            answer = answers[0] if answers else None
            if not pager.advance(document, answer, found=len(found), url=call_url):
                return items
        raise QueryError(f"more than {MAX_PAGES} pages for one node", transient=False)

    def load_roots(self) -> Iterable[Item]:
        """The level-1 nodes, from the source URL (fetched now) or file (read as they are
        taken: a long list never sits in memory whole)."""
        if self.job.source.file is not None:
            return read_source_file(self.job.source.file, self.job.response)
        headers = self._headers(_NO_NODE)
        document = self._call("GET", self._source_url, None, headers, self.job.request.timeout)
        return self._items(document, "GET", self._source_url)

    def _call(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str] | None,
        timeout: float,
        level: int = 0,
        on_answer: Callable[[httpx.Response], object] | None = None,
    ) -> Any:
        """One HTTP call through the gate; the decoded JSON body, or a classified QueryError.
        ``on_answer`` is given the response of a call that succeeds (its headers)."""
        with self.gate.slot(level) as outcome:
            try:
                response = self.http.request(
                    method, url, json=body, headers=headers, timeout=self._timeout_arg(timeout)
                )
            except httpx.HTTPError as exc:
                outcome.kind = FAILURE
                where = self.redactor.redact(f"{method} {_url_of(exc, url)}")
                problem = tls_problem(exc)  # a certificate refused: no retry mends it
                if problem is not None:  # every call would fail so: the runner stops
                    raise TlsError(f"{problem} ({where})") from exc
                reason = self.redactor.redact(str(exc) or type(exc).__name__)
                raise QueryError(
                    f"{type(exc).__name__} on {where}: {reason}", transient=True
                ) from exc
            outcome.status = response.status_code
            if response.status_code == 401:  # never a node's fault: the runner stops the run
                raise self._refused(method, response)
            if self._pacing:
                outcome.limits = parse_rate_limits(response.headers)
            if response.status_code < 300:
                try:
                    document = json.loads(response.content)
                except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
                    raise self._error(method, response) from None
                if _SURROGATE_ESCAPE.search(response.content):  # rare: checked only then
                    _refuse_lone_surrogates(document, method, self.redactor.redact(url))
                outcome.kind = SUCCESS
                if on_answer is not None:
                    on_answer(response)
                return document
            error = self._error(method, response)
            outcome.kind = self._kind(response.status_code, error.retry_after)
            outcome.retry_after = error.retry_after
            error.throttled = outcome.kind == THROTTLE
            raise error

    def _protect(self, secrets: Iterable[str]) -> None:
        """Mask values [auth] made or obtained (a token) in messages and logs from now on."""
        values = list(secrets)
        self.redactor.add(values)
        logs.protect(values)

    def _refused(self, method: str, response: httpx.Response) -> AuthError:
        """The AuthError for a 401 that no renewal mends."""
        where = self.redactor.redact(f"{method} {response.url}")
        if self.auth is None:
            what = "the request's credentials (the job has no [auth] to renew them)"
        elif self.auth.renewable:
            what = f"{self.auth.what}, even renewed"
        else:
            what = self.auth.what
        said = self._excerpt(_text(response))
        return AuthError(f"HTTP 401 from {where}: the API refused {what}; it said: {said}")

    def _kind(self, status: int, retry_after: float | None) -> str:
        """How an HTTP error status counts for the policies (see ``policies.gate``).

        A 503 is a throttle when it says when to come back (Retry-After), or when
        the server still accepts other calls (it sheds load, as nginx's
        ``limit_req`` does by default); a 503 among nothing but errors is an
        outage, and the breaker counts it.
        """
        if status not in self._retry_on:
            return PERMANENT
        if status in (429, 425):
            return THROTTLE  # busy, not broken: the breaker does not count it
        if status == 503 and (retry_after is not None or self.gate.sheds_load()):
            return THROTTLE
        return FAILURE if status >= 500 or status == 408 else THROTTLE

    def _items(self, document: Any, method: str, url: str) -> list[Item]:
        try:
            return self._mapper.items(document)
        except MappingError as exc:
            where = self.redactor.redact(f"{method} {url}")
            try:
                body = json.dumps(document, ensure_ascii=False)
            except (ValueError, RecursionError):
                body = "(too deeply nested to show)"
            raise QueryError(
                f"{exc} (from {where}); body: {self._excerpt(body)}", transient=False
            ) from None

    def _timeout_arg(self, seconds: float) -> Any:
        """The shared client's own timeout when it is the same (httpx builds none then)."""
        arg = self._timeout_args.get(seconds)
        if arg is None:
            same = httpx.Timeout(seconds) == self.http.timeout
            arg = self._timeout_args[seconds] = httpx.USE_CLIENT_DEFAULT if same else seconds
        return arg

    def _error(self, method: str, response: httpx.Response) -> QueryError:
        """The QueryError for an HTTP error status or a body that is not JSON."""
        where = self.redactor.redact(f"{method} {response.url}")
        status = response.status_code
        if status < 300:
            return QueryError(
                f"body is not JSON (HTTP {status} from {where}): {self._excerpt(_text(response))}",
                transient=False,
                status=status,
            )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return QueryError(
            f"HTTP {status} from {where}: {self._excerpt(_text(response))}",
            transient=status in self._retry_on,
            status=status,
            retry_after=retry_after,
        )

    def _excerpt(self, text: str) -> str:
        text = text[:BODY_EXCERPT].replace("\n", " ")
        return self.redactor.redact(text) if text else "(empty body)"


_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")  # \ud800-\udfff in a JSON body


def _refuse_lone_surrogates(document: Any, method: str, where: str) -> None:
    """A JSON escape can make a lone surrogate (\\ud800), which no UTF-8 text (nor the
    checkpoint) can hold: refuse the answer rather than fail when storing it."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(
            f"the body from {method} {where} holds a lone UTF-16 surrogate (a \\ud800-\\udfff"
            " escape that is not half of a pair): it cannot be stored",
            transient=False,
        ) from None
    except (ValueError, RecursionError):
        return  # too deep: the mapping says so


def _text(response: httpx.Response) -> str:
    """The body as text for a message, whatever charset the server claims (an unknown or
    lying one falls back to UTF-8 with replacement characters)."""
    try:
        return response.text
    except Exception:
        return response.content.decode("utf-8", errors="replace")


def _with_query(url: str, params: Mapping[str, Any]) -> str:
    # Encoded here, once: handing httpx a params dict costs a second URL parse.
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


_RATE_PREFIXES = ("ratelimit", "x-ratelimit")


def parse_rate_limits(headers: httpx.Headers, now: float | None = None) -> RateLimits | None:
    """What rate-limit headers say, in any of the common forms; None when there are none.

    ``RateLimit-Limit/-Remaining/-Reset`` and ``X-RateLimit-*`` (the reset in
    seconds, or as a Unix time when it is larger than a year of seconds), and
    the IETF drafts' structured ``RateLimit: r=..;t=..`` (or the older
    ``limit=.., remaining=.., reset=..``) with ``RateLimit-Policy: q=..;w=..``.
    """
    found: dict[str, str] = {}
    for name, value in headers.multi_items():
        if name.startswith(_RATE_PREFIXES):
            found[name.removeprefix("x-")] = value
    if not found:
        return None
    fields = _structured(found.get("ratelimit", "")) | _structured(
        found.get("ratelimit-policy", "")
    )
    remaining = _number(found.get("ratelimit-remaining", fields.get("r", fields.get("remaining"))))
    reset = _number(found.get("ratelimit-reset", fields.get("t", fields.get("reset"))))
    limit = _number(found.get("ratelimit-limit", fields.get("q", fields.get("limit"))))
    window = _number(fields.get("w"))
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = max(0.0, reset - (time.time() if now is None else now))
    if remaining is None and limit is None:
        return None
    return RateLimits(remaining=remaining, reset=reset, limit=limit, window=window)


_EPOCH_THRESHOLD = 365 * 86400.0  # a reset larger than this is a Unix time, not seconds


def _structured(value: str) -> dict[str, str]:
    """``"name";r=5;t=10, ...`` or ``limit=10, remaining=5`` → {"r": "5", ...} (the first
    policy's figures win)."""
    out: dict[str, str] = {}
    for part in value.replace(",", ";").split(";"):
        key, sep, item = part.strip().partition("=")
        if sep and key not in out:
            out[key.strip().lower()] = item.strip().strip('"')
    return out


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _url_of(exc: httpx.HTTPError, fallback: str) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # no request attached
        return fallback


class MappingError(ResumerError, ValueError):
    """A body does not have the shape the job's [response] section describes.

    A ``ValueError`` too: ``_read_jsonl`` catches one ``ValueError`` for a line that is
    not JSON and for an item without an id."""


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` ("" = the document); ``KeyError`` naming the missing step."""
    if path == "":
        return document
    value = document
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise KeyError(step)
    return value


def as_text(value: Any) -> str:
    """An id/name/type as text: strings as they are, other scalars as their JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


_MISSING = object()
# One encoder for every payload: json.dumps with options builds a new one per call.
_encode_payload = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """A field reader for a dotted path; a plain key (the usual case) is one dict lookup."""
    if "." not in path:
        return lambda item: item.get(path, _MISSING)

    def get(item: dict[str, Any]) -> Any:
        try:
            return lookup(item, path)
        except KeyError:
            return _MISSING

    return get


def _optional_text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is _MISSING or isinstance(value, dict | list):
        return ""
    return as_text(value)


class Mapper:
    """Turns a decoded body into ``Item``s following the [response] section."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self._id = _getter(response.id)
        self._name = _getter(response.name)
        self._type = _getter(response.type)
        keys = (response.id, response.name, response.type)
        self._plain_keys = keys if all(k and "." not in k for k in keys) else None

    def items(self, document: Any) -> list[Item]:
        try:
            return self._items(document)
        except RecursionError:  # an item nested past Python's stack: no payload to store
            raise MappingError("an item is nested too deeply to store") from None

    def _items(self, document: Any) -> list[Item]:
        path = self.response.items
        try:
            found = lookup(document, path)
        except KeyError:
            raise MappingError(_missing_path(document, path)) from None
        if not isinstance(found, list):
            where = f"items path {path!r}" if path else "the body"
            raise MappingError(f"{where} is {_kind(found)}, expected a list of items")
        if not self._plain_keys:
            return [self.item(item, index) for index, item in enumerate(found)]
        # The usual case, inlined: plain keys whose values are already strings.
        id_key, name_key, type_key = self._plain_keys
        out: list[Item] = []
        for index, item in enumerate(found):
            if type(item) is dict:
                raw_id, name, kind = (
                    item.get(id_key),
                    item.get(name_key, ""),
                    item.get(type_key, ""),
                )
                if type(raw_id) is str and type(name) is str and type(kind) is str:
                    out.append(Item(raw_id, name, kind, _encode_payload(item)))
                    continue
            out.append(self.item(item, index))  # conversions and errors
        return out

    def item(self, item: Any, index: int) -> Item:
        if not isinstance(item, dict):
            raise MappingError(f"item {index} is {_kind(item)}, expected an object")
        raw_id = self._id(item)
        if type(raw_id) is not str:
            if raw_id is _MISSING or raw_id is None or isinstance(raw_id, dict | list):
                raise MappingError(
                    f"item {index} has no usable id field {self.response.id!r}{_keys_hint(item)}"
                )
            raw_id = as_text(raw_id)
        return Item(
            raw_id,
            _optional_text(self._name(item)),
            _optional_text(self._type(item)),
            _encode_payload(item),
        )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _missing_path(document: Any, path: str) -> str:
    """Where a dotted path stops, and the keys that were there instead."""
    found, steps = document, path.split(".")
    for depth, step in enumerate(steps):
        try:
            found = lookup(found, step)
        except KeyError:
            where = "the body" if depth == 0 else repr(".".join(steps[:depth]))
            if depth == 0:
                return f"items path {path!r} not found{_keys_hint(found)}"
            keys = ", ".join(list(found)[:10]) if isinstance(found, dict) else _kind(found)
            return f"items path {path!r} not found: {where} has no {step!r} (it has: {keys})"
    return f"items path {path!r} not found"


def _keys_hint(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:10]) or "(none)"
        return f"; its top-level keys are: {keys}"
    return f"; the body is {_kind(value)}"


def read_source_file(path: Path, response: Response) -> Iterator[Item]:
    """Level-1 items from a .csv (header with id,name,type), .json (array) or .jsonl file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            yield from _read_csv(path)
        elif suffix == ".json":
            yield from _read_json(path, response)
        else:
            yield from _read_jsonl(path, response)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such source file (source.file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the source file ({exc})") from exc


def _read_csv(path: Path) -> Iterator[Item]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "id" not in header:
            raise ConfigError(f"{path}:1: expected a header row with id,name,type; got {header}")
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise ConfigError(f"{path}:{line}: expected {len(header)} fields as in the header")
            if not row["id"]:
                raise ConfigError(f"{path}:{line}: empty id")
            yield Item(
                id=row["id"],
                name=row.get("name") or "",
                type=row.get("type") or "",
                payload=json.dumps(row, ensure_ascii=False, separators=(",", ":")),
            )


def _read_json(path: Path, response: Response) -> Iterator[Item]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, list):
        raise ConfigError(f"{path}: expected a JSON array of objects, got {_kind(document)}")
    mapper = Mapper(response)
    for index, item in enumerate(document):
        try:
            yield mapper.item(item, index)
        except MappingError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _read_jsonl(path: Path, response: Response) -> Iterator[Item]:
    mapper = Mapper(response)
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield mapper.item(json.loads(line), line_number)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line_number}: {exc}") from None
