"""The fake feature API: a deterministic tree behind HTTP, for the demo, tests and benchmarks.

The tree is ``tree.FakeTree``; the rate limiter and its headers are
``limiter``'s.

Endpoints (bodies are ``{"data": {"items": [...]}}``):

- ``GET /features``: the level-1 nodes;
- ``GET /children?id=&name=&type=``, ``POST /children`` with a JSON body
  (``id``/``name``/``type`` or ``featureId``/``featureName``/``featureType``),
  ``GET /features/{id}/children``: a node's children. A name or type that does
  not match the id answers 400, an unknown id 404;
- ``GET /_stats``: requests received and answers by status (0 = dropped);
- ``POST /_rate`` with ``{"rate": R}`` (and optionally ``"burst": B``): change
  the rate limit while serving; answers ``{"rate": R, "burst": B}``;
- with ``auth`` (a ``auth.FakeAuth``): ``POST /token`` (OAuth2 client
  credentials, short-lived tokens), ``GET``/``POST /_auth`` (its counters; revoke
  the tokens, change the secret), and 401 on the data endpoints without a valid
  ``Authorization``.

Faults (``Faults``) make it misbehave on purpose, seeded and replayable:
errors, throttling with Retry-After, slow answers, dropped connections, an
outage window, an overload limit, and pagination of the children (by
``page``/``size``, by ``offset``/``limit``, or by ``cursor``, the next cursor in
``data.next``). ``Faults.next_link`` also gives the next page's URL: in a
``Link: <...>; rel="next"`` header (``"header"``, a URL relative to the request)
or in the body at ``links.next`` (``"body"``, an absolute URL). Given a server
``ssl.SSLContext`` (``tls``), it is served over HTTPS.

``Faults.rate_limit`` puts nginx's ``limit_req ... nodelay`` in front of the
children endpoints (only them), or with ``Faults.limiter`` a fixed or sliding
window, or a limit on the calls served at once; see ``limiter``. ``Faults.quota``
closes them for ``closed_for`` seconds every ``quota`` calls (429, Retry-After).
``Faults.envelope`` answers as company APIs do, ``{"code", "msg", "data"}`` with
the items in ``data.list``, a node without children as ``data: null`` or a 404,
and the body-level faults (busy, throttled, lying, denied) those APIs have.

The server is a small asyncio HTTP/1.1 loop (keep-alive, Content-Length
bodies) rather than ``http.server``: it must answer thousands of calls a second
on one core so that benchmarks measure the crawler, not the fake.

Tested by tests/integration/test_resilience.py, tests/integration/test_pagination_styles.py,
tests/integration/test_pacing.py and tests/integration/test_tls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from resumer.fake.auth import FakeAuth
from resumer.fake.limiter import (
    LIMITER_SHAPES,
    RATE_HEADER_STYLES,
    THROTTLE_STATUSES,
    LeakyBucket,
    WindowLimiter,
    rate_limit_headers,
)
from resumer.fake.stats import Stats
from resumer.fake.tree import CHILDREN_KEY, FakeTree

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


NEXT_LINK_STYLES = ("", "header", "body")


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often: rates are fractions of calls (0 to 1).

    Each call's fate is a pure function of the seed, the request and how many
    times that request was made before, so a run can be replayed; a retried
    call gets a fresh draw, so retries eventually get through.
    """

    error_rate: float = 0.0  # HTTP 500
    throttle_rate: float = 0.0  # HTTP 429 with Retry-After
    slow_rate: float = 0.0  # the answer comes after slow_delay (past the client's timeout)
    drop_rate: float = 0.0  # the connection is closed without an answer
    outage: tuple[float, float] | None = None  # seconds after the first call: all answer 503
    max_inflight: int = 0  # beyond this many calls at once: 429, and latency grows (0 = off)
    retry_after: float = 1.0  # seconds, sent with 429s
    slow_delay: float = 30.0  # seconds
    page_size: int = 0  # items per page of children (0 = no pagination)
    next_link: str = ""  # with page_size: the next page's URL, "header" (Link) or "body"
    rate_limit: float = 0.0  # children calls a second, nginx limit_req nodelay (0 = off)
    burst: int = 10  # calls beyond the rate let through at once (burst + 1 in all)
    throttle_status: int = 429  # the answer to a call over the limit: 429 or 503
    limit_retry_after: float | None = 1.0  # seconds, sent with those refusals (None = no header)
    rate_headers: str = ""  # rate-limit headers: "", "ratelimit", "x-ratelimit" or "draft"
    # The code/msg/data envelope of company APIs: every answer {"code", "msg", "data"},
    # items in data.list; a node without children answers data: null or HTTP 404.
    envelope: bool = False
    busy_rate: float = 0.0  # envelope: HTTP 200 {"code": 500, "data": null} (busy: try again)
    body_throttle_rate: float = 0.0  # envelope: HTTP 200 {"code": 429, "data": {"retryAfter"}}
    lie_rate: float = 0.0  # envelope: HTTP 200 {"code": 500, "data": {"list": []}}: an error
    denied: frozenset[str] = frozenset()  # envelope: ids answered {"code": 403} every time
    # A quota: after this many children calls the API is closed for closed_for seconds
    # (429 with Retry-After: the seconds left), then opens with a new quota (0 = none).
    quota: int = 0
    closed_for: float = 0.0
    # The shape of the rate limit (with rate_limit): nginx's "bucket", a fixed "window" or
    # a "sliding" one of rate_limit calls a second (refused calls counted too), or
    # "concurrency": at most rate_limit calls served at once, 503 at once beyond.
    limiter: str = "bucket"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_limit) and self.rate_limit >= 0):
            raise ValueError(f"rate_limit: expected calls a second >= 0, got {self.rate_limit!r}")
        if self.burst < 0:
            raise ValueError(f"burst: expected an integer >= 0, got {self.burst!r}")
        retry = self.limit_retry_after
        if retry is not None and not (math.isfinite(retry) and retry >= 0):
            raise ValueError(f"limit_retry_after: expected seconds >= 0 or None, got {retry!r}")
        if self.throttle_status not in THROTTLE_STATUSES:
            raise ValueError(f"throttle_status: expected 429 or 503, got {self.throttle_status!r}")
        if self.next_link not in NEXT_LINK_STYLES:
            raise ValueError(
                f"next_link: expected one of {NEXT_LINK_STYLES}, got {self.next_link!r}"
            )
        body_faults = self.busy_rate or self.body_throttle_rate or self.lie_rate or self.denied
        if body_faults and not self.envelope:
            raise ValueError("busy, body throttle, lie and denied answers need the envelope")
        if self.limiter not in LIMITER_SHAPES:
            raise ValueError(f"limiter: expected one of {LIMITER_SHAPES}, got {self.limiter!r}")
        if self.rate_headers and self.rate_headers not in RATE_HEADER_STYLES:
            raise ValueError(
                f"rate_headers: expected one of {RATE_HEADER_STYLES}, got {self.rate_headers!r}"
            )

    @property
    def random(self) -> bool:
        """True if any fault is drawn at random."""
        rates = (self.error_rate, self.throttle_rate, self.slow_rate, self.drop_rate)
        return any((*rates, self.busy_rate, self.body_throttle_rate, self.lie_rate))

    def draw(self, seed: int, key: str, attempt: int) -> str | None:
        """The fault for the ``attempt``-th call of ``key``: error, throttle, slow, drop or None."""
        roll = (zlib.crc32(f"{seed}|{key}|{attempt}".encode()) % 1_000_000) / 1_000_000
        for name, rate in (
            ("error", self.error_rate),
            ("throttle", self.throttle_rate),
            ("slow", self.slow_rate),
            ("drop", self.drop_rate),
            ("busy", self.busy_rate),
            ("body_throttle", self.body_throttle_rate),
            ("lie", self.lie_rate),
        ):
            if roll < rate:
                return name
            roll -= rate
        return None


def _is_children(target: str) -> bool:
    """True for the children endpoints, the only ones the rate limit applies to."""
    path = target.partition("?")[0]
    return path == "/children" or (path.startswith("/features/") and path.endswith("/children"))


class _Answer(NamedTuple):
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()
    action: str | None = None  # "slow", "drop" or "refused" (by the rate limit)


class FakeAPI:
    """The fake API served on a background thread (tests, demo) or in the foreground (CLI).

    >>> with FakeAPI(FakeTree(seed=1)) as api:   # doctest: +SKIP
    ...     print(api.url)                        # http://127.0.0.1:PORT
    """

    def __init__(
        self,
        tree: FakeTree,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        broken: frozenset[str] = frozenset(),
        faults: Faults | None = None,
        tls: ssl.SSLContext | None = None,
        auth: FakeAuth | None = None,
    ) -> None:
        self.tree = tree
        self.tls = tls  # a server context: served over HTTPS (tests of [request.tls])
        self.auth = auth  # /token, and the data endpoints' check of Authorization
        self.host = host
        self.port = port
        self.latency = latency
        self.broken = broken  # node ids whose children query answers HTTP 400
        self.faults = faults or Faults()
        self.stats = Stats()
        self._draws: Counter[str] = Counter()
        self._quota_used = 0  # children calls of the current quota
        self._closed_until = -math.inf  # the quota is closed until then (monotonic)
        self._bucket = LeakyBucket(self.faults.rate_limit, self.faults.burst)
        shape = self.faults.limiter
        self._window = (
            WindowLimiter(self.faults.rate_limit, sliding=shape == "sliding")
            if shape in ("window", "sliding") and self.faults.rate_limit
            else None
        )
        self._rate_lock = threading.Lock()
        self._first_call: float | None = None  # when the first call came (monotonic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # -- running ---------------------------------------------------------------

    def start(self) -> FakeAPI:
        """Serve on a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self.serve_forever, name="fake-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake API did not start")
        return self

    def serve_forever(self, on_ready: Any = None) -> None:
        asyncio.run(self._serve(on_ready))

    async def _serve(self, on_ready: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        if on_ready is not None:
            on_ready(self)
        with contextlib.suppress(asyncio.CancelledError):
            async with self._server:
                await self._server.serve_forever()

    def set_rate(self, rate: float, burst: int | None = None) -> tuple[float, int]:
        """Change the rate limit while serving (thread-safe): ``rate`` children calls a
        second (0 = off) and, if given, ``burst``; the bucket keeps what it holds.
        Returns the limit now in force, (rate, burst); ValueError on a bad value.
        """
        number = isinstance(rate, int | float) and not isinstance(rate, bool)
        if not (number and math.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate: expected a number of calls a second >= 0, got {rate!r}")
        integer = isinstance(burst, int) and not isinstance(burst, bool)
        if burst is not None and not (integer and burst >= 0):
            raise ValueError(f"burst: expected an integer >= 0, got {burst!r}")
        with self._rate_lock:
            faults = replace(
                self.faults,
                rate_limit=float(rate),
                burst=self.faults.burst if burst is None else burst,
            )
            self._bucket.set_rate(faults.rate_limit, faults.burst)
            self.faults = faults
            return faults.rate_limit, faults.burst

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connected()
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                in_flight = self.stats.arrived()
                try:
                    answer = await self._answer(method, target, body, in_flight, headers)
                finally:
                    self.stats.left()
                if answer.action == "drop":
                    return  # closed below, without a word
                # The envelope's APIs send their Chinese as UTF-8, not as \u escapes.
                data = json.dumps(
                    answer.body, separators=(",", ":"), ensure_ascii=not self.faults.envelope
                ).encode()
                extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers)
                head_out = (
                    f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Error')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n"
                )
                writer.write(head_out.encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(
        self,
        method: str,
        target: str,
        body: bytes,
        in_flight: int,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        arrived = time.monotonic()
        faults = self.faults
        latency = self.latency
        if faults.max_inflight:
            latency *= max(1.0, in_flight / faults.max_inflight)  # an overloaded server slows
        guarded = self.auth.answer(method, target, body, headers or {}) if self.auth else None
        closed = self._quota(target) if faults.quota else None
        if guarded is not None:  # /token, /_auth, or a data call refused with 401
            answer = _Answer(*guarded)
        elif closed is not None:
            answer = closed
        elif self._bucket.rate and _is_children(target):
            answer = self._limited(method, target, body, in_flight)
        else:  # _unlimited, inlined: the limit off must cost no more than the test above
            fault = None if target.startswith("/_") else self._fault(target, in_flight)
            answer = fault if fault is not None else self._handled(method, target, body)
        if answer.action == "slow":
            await asyncio.sleep(faults.slow_delay)
        elif latency > 0 and answer.action != "refused":  # nginx refuses before the backend
            await asyncio.sleep(latency)
        self.stats.answered(arrived, target, answer.status if answer.action != "drop" else 0)
        return answer

    def _quota(self, target: str) -> _Answer | None:
        """A children call against the quota: refused while it is closed (429, Retry-After
        the seconds left, whole), else counted; the last call of a quota closes it."""
        if not _is_children(target):
            return None
        now = time.monotonic()
        if now < self._closed_until:
            left = math.ceil(self._closed_until - now)
            error = {"error": f"quota exhausted: closed for {left}s more"}
            return _Answer(429, error, (("Retry-After", str(left)),), "refused")
        self._quota_used += 1
        if self._quota_used >= self.faults.quota:
            self._quota_used = 0
            self._closed_until = now + self.faults.closed_for
            self.stats.closed += 1
        return None

    def _unlimited(self, method: str, target: str, body: bytes, in_flight: int) -> _Answer:
        answer = None if target.startswith("/_") else self._fault(target, in_flight)
        return answer if answer is not None else self._handled(method, target, body)

    def _limited(self, method: str, target: str, body: bytes, in_flight: int) -> _Answer:
        """A children call through the rate limit: refused, or answered as usual."""
        faults = self.faults
        if faults.limiter != "bucket":
            return self._shaped(method, target, body, in_flight)
        decision = self._bucket.take()
        if decision.accepted:
            answer = self._unlimited(method, target, body, in_flight)
        else:
            retry = faults.limit_retry_after
            error = {"error": f"rate limit exceeded ({decision.rate:g}/s, burst {decision.burst})"}
            after = () if retry is None else (("Retry-After", f"{retry:g}"),)
            answer = _Answer(faults.throttle_status, error, after, "refused")
        if faults.rate_headers:
            extra = rate_limit_headers(faults.rate_headers, decision, time.time())
            answer = answer._replace(headers=answer.headers + extra)
        return answer

    def _shaped(self, method: str, target: str, body: bytes, in_flight: int) -> _Answer:
        """A children call through a window, or past a limit on the calls served at once."""
        faults = self.faults
        if faults.limiter == "concurrency":
            if in_flight > faults.rate_limit:  # refused at once, before the backend
                error = {"error": f"too many calls at once (over {faults.rate_limit:g})"}
                return _Answer(503, error, (), "refused")
            return self._unlimited(method, target, body, in_flight)
        assert self._window is not None
        decision = self._window.take()
        headers = self._window.headers(decision, time.time()) if faults.rate_headers else ()
        if decision.accepted:
            answer = self._unlimited(method, target, body, in_flight)
            return answer._replace(headers=answer.headers + headers)
        wait = max(1, math.ceil(decision.reset_at - time.time()))
        after = (("Retry-After", str(wait)),) if faults.limit_retry_after is not None else ()
        error = {"error": f"rate limit exceeded ({decision.limit} per second, {faults.limiter})"}
        return _Answer(faults.throttle_status, error, after + headers, "refused")

    def _fault(self, target: str, in_flight: int) -> _Answer | None:
        faults = self.faults
        if faults.outage is not None:
            start, end = faults.outage
            now = time.monotonic()
            if self._first_call is None:  # the window is timed from the crawl's first call
                self._first_call = now
            if start <= now - self._first_call < end:
                return _Answer(503, {"error": "service unavailable (outage)"})
        if faults.max_inflight and in_flight > faults.max_inflight:
            return _Answer(429, {"error": f"too many calls at once (over {faults.max_inflight})"})
        if not faults.random:
            return None
        self._draws[target] += 1
        fault = faults.draw(self.tree.seed, target, self._draws[target])
        if fault == "error":
            return _Answer(500, {"error": "internal error (injected)"})
        if fault == "throttle":
            headers = (("Retry-After", f"{faults.retry_after:g}"),)
            return _Answer(429, {"error": "slow down (injected)"}, headers)
        if fault in ("slow", "drop"):
            return _Answer(504, {"error": "too late"}, (), fault)
        if fault == "busy":
            busy = "系统繁忙，请稍后再试"  # noqa: RUF001 (a Chinese comma, as such APIs write it)
            return _Answer(200, {"code": 500, "msg": busy, "data": None})
        if fault == "body_throttle":
            wait = {"retryAfter": faults.retry_after}
            return _Answer(200, {"code": 429, "msg": "请求过于频繁", "data": wait})
        if fault == "lie":  # an error whose data still looks like an empty page
            return _Answer(200, {"code": 500, "msg": "内部错误", "data": {"list": []}})
        return None

    def _handled(self, method: str, target: str, body: bytes) -> _Answer:
        """``handle``'s answer, with the next page's URL when ``Faults.next_link`` asks."""
        status, document = self.handle(method, target, body)
        style = self.faults.next_link
        if not style or status != 200 or not _is_children(target):
            return _Answer(status, document)
        cursor = document.get("data", {}).get("next") if isinstance(document, dict) else None
        if cursor is None:
            return _Answer(status, document)  # the last page: no next link
        following = next_page_target(target, cursor)
        if style == "body":
            return _Answer(status, {**document, "links": {"next": self.url + following}})
        return _Answer(status, document, (("Link", f'<{following}>; rel="next"'),))

    def handle(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        """Answer one request: (status, JSON document), in the envelope if asked for."""
        status, document = self._route(method, target, body)
        if not self.faults.envelope or target.startswith("/_"):
            return status, document
        return _enveloped(status, document)

    def _route(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path == "/features" and method == "GET":
            return 200, {"data": {"items": self.tree.root_items()}}
        if path == "/_stats" and method == "GET":
            with self.stats._cond:
                statuses = {str(k): v for k, v in sorted(self.stats.statuses.items())}
                return 200, {"received": self.stats.received, "statuses": statuses}
        if path == "/_rate" and method == "POST":
            return self._rate(body)
        if path == "/children" and method == "GET":
            return self._children(query)
        if path == "/children" and method == "POST":
            try:
                document = json.loads(body or b"null")
            except ValueError:
                return 400, {"error": "body is not JSON"}
            if not isinstance(document, dict):
                return 400, {"error": "body must be an object"}
            return self._children({**query, **{k: str(v) for k, v in document.items()}})
        if path.startswith("/features/") and path.endswith("/children") and method == "GET":
            node_id = unquote(path[len("/features/") : -len("/children")])
            return self._children({**query, "id": node_id})
        return 404, {"error": f"no route {method} {path}"}

    def _rate(self, body: bytes) -> tuple[int, Any]:
        """``POST /_rate``: ``{"rate": R}`` or ``{"rate": R, "burst": B}``."""
        try:
            document = json.loads(body or b"null")
        except ValueError:
            return 400, {"error": "body is not JSON"}
        if not isinstance(document, dict) or "rate" not in document:
            return 400, {"error": 'expected an object like {"rate": 5, "burst": 10}'}
        try:
            rate, burst = self.set_rate(document["rate"], document.get("burst"))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, {"rate": rate, "burst": burst}

    def _children(self, query: dict[str, str]) -> tuple[int, Any]:
        node_id = query.get("id", query.get("featureId", query.get("subFeatureId")))
        if node_id is None:
            return 400, {"error": "missing id"}
        level = self.tree.level_of(node_id)
        if level is None:
            return 404, {"error": f"no feature {node_id}"}
        if node_id in self.broken:
            return 400, {"error": f"feature {node_id} is broken", "code": "E_BROKEN"}
        if node_id in self.faults.denied:
            return 200, {"denied": True}
        item = self.tree.item(node_id)
        for key in ("name", "type"):
            sent = query.get(key, query.get("feature" + key.capitalize()))
            if sent is not None and sent != item[key]:
                return 400, {"error": f"{key} {sent!r} does not match feature {node_id}"}
        self.stats.record(node_id)
        children = self.tree.children(node_id, level)
        if not children and self.faults.envelope:  # as such APIs say "none": one way or another
            if zlib.crc32(node_id.encode()) % 2:
                return 404, {"error": "该特性没有子特性"}
            return 200, {"data": None}
        if not self.faults.page_size:
            return 200, {"data": {self.tree.items_key(level): children}}
        return self._page(children, query)

    def _page(self, children: list[dict[str, Any]], query: dict[str, str]) -> tuple[int, Any]:
        """One page: by ``page`` number (1-based) and ``size``, by ``offset`` and ``limit``,
        or by ``cursor``; never more than ``page_size`` items."""
        try:
            asked = query.get("limit" if "offset" in query else "size", self.faults.page_size)
            size = min(int(asked), self.faults.page_size)
            if "cursor" in query:
                offset = int(query["cursor"].removeprefix("c"))
            elif "offset" in query:
                offset = int(query["offset"])
            else:
                offset = (int(query.get("page", 1)) - 1) * size
        except ValueError:
            return 400, {"error": "bad page, size or cursor"}
        if size < 1 or offset < 0:
            return 400, {"error": "bad page, size or cursor"}
        end = offset + size
        following = f"c{end}" if end < len(children) else None
        return 200, {"data": {"items": children[offset:end], "next": following}}


def _enveloped(status: int, document: Any) -> tuple[int, Any]:
    """An answer in the code/msg/data envelope: items in ``data.list``, an error's text in
    ``msg``."""
    if not isinstance(document, dict):
        return status, document
    if document.get("denied"):
        return 200, {"code": 403, "msg": "无权限访问该特性", "data": None}
    if "error" in document:
        return status, {"code": status, "msg": document["error"], "data": None}
    data = document.get("data")
    if data is None:
        return status, {"code": 0, "msg": "成功", "data": None}
    key = "items" if "items" in data else CHILDREN_KEY  # the renamed level keeps its word
    envelope = {
        "list" if key == "items" else key: data[key],
        **({"next": data["next"]} if "next" in data else {}),
    }
    return status, {"code": 0, "msg": "成功", "data": envelope}


def next_page_target(target: str, cursor: str) -> str:
    """The request target of the page after ``target``'s, whose cursor is ``cursor``
    (``c<offset>``): the same query with its cursor, offset or page moved on."""
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cursor" in query:
        query["cursor"] = cursor
    elif "offset" in query:
        query["offset"] = cursor.removeprefix("c")
    else:
        query["page"] = str(int(query.get("page", "1")) + 1)
    return f"{parts.path}?{urlencode(query)}"


def parse_outage(text: str) -> tuple[float, float]:
    """``"5:12"`` → ``(5.0, 12.0)``; ValueError on anything else."""
    start, sep, end = text.partition(":")
    try:
        window = (float(start), float(end))
    except ValueError:
        window = (-1.0, -1.0)
    if not sep or window[0] < 0 or window[1] <= window[0]:
        raise ValueError(f"--outage: expected START:END seconds with START < END, got {text!r}")
    return window
