"""One query: render the request for a node, send it (all its pages), have its answer
judged (``answers``), and map the body to child items.

Also loads the level-1 nodes from the job's source (a URL read like any
response; a file is read by ``sources``). Errors come out as ``QueryError``
(``transient`` when a retry may help); every message carries the status, the
URL and the start of the body, with secrets masked. The calls go through an
``http.pool.HTTP`` (a ``ClientPool``, which ends each by its deadline); bodies are
mapped by ``mapping``, rate-limit headers read by ``http.ratelimits``.

This module knows nothing of the database, the worker threads or retries, and
holds no connection of its own.
"""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx

from resumer.errors import (
    AuthError,
    BodyTooLarge,
    ProxyAuthError,
    QueryError,
    StopError,
    TlsError,
)
from resumer.http.auth import AuthorizedHTTP, authorizer_for
from resumer.http.pool import HTTP, EnvironmentProxies
from resumer.http.ratelimits import parse_rate_limits, parse_retry_after
from resumer.http.tls import tls_problem
from resumer.job.bound import BoundJob
from resumer.job.messages import one_line
from resumer.job.settings import Job, Pagination, Response, Rule
from resumer.job.template import PLACEHOLDERS, Template, quote_query, quote_segment
from resumer.model import Item, Streamed, Task
from resumer.ops import logs
from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.gate import CallOutcome, Gate
from resumer.query.answers import (
    BIG_BODY,
    EMPTY,
    FAILURE,
    NOT_JSON,
    PERMANENT,
    RULE_KINDS,
    SUCCESS,
    THROTTLE,
    Body,
    Rules,
    Verdict,
    api_message,
    kind_of_status,
)
from resumer.query.mapping import Mapper, MappingError, lookup
from resumer.query.pages import Pager
from resumer.query.shape import shape_of
from resumer.query.sources import read_source_file
from resumer.query.streamed import LazyItems

_POINTED = ("link", "next_url")  # pagination modes whose answers name the next page
BODY_EXCERPT = 200  # characters of a response body kept in an error message
MAX_PAGES = 100_000  # pages of one node's children at most: a runaway cursor ends here
_NO_NODE = dict.fromkeys(PLACEHOLDERS, "")  # placeholder values for the source call

_Render = Callable[[Mapping[str, str]], Any]


class _Asking(NamedTuple):
    """How the nodes of one level are asked about, and their answers read: the level's
    request and response (``[levels.N.request]`` / ``[levels.N.response]`` applied) and
    the leaf and drop rules for the items they bring."""

    method: str
    url: Template
    params: Mapping[str, Template]
    body: _Render | None
    headers: dict[str, Template]  # sent per call: templated, or unlike the shared ones
    mapper: Mapper
    pages: Pagination | None
    rules: Rules
    message: str | None  # where the API puts its own error text
    max_body: int  # bytes: the largest answer read (the pool caps at the largest of all)
    max_body_key: str  # the key that sets it, for messages
    streams: str | None  # the items path, if a big answer's items may stay in its bytes


def _compile_json(value: Any) -> _Render:
    """A function rendering a bound JSON body (its strings ``Template``s); a string that
    is exactly ``{level}`` → int."""
    if isinstance(value, Mapping):
        parts = [(key, _compile_json(item)) for key, item in value.items()]
        return lambda values: {key: render(values) for key, render in parts}
    if isinstance(value, list):
        items = [_compile_json(item) for item in value]
        return lambda values: [render(values) for render in items]
    if isinstance(value, Template):
        if value.only_placeholder() == "level":
            return lambda values: int(values["level"])
        return value.render
    return lambda values: value


class Client:
    """Queries the children endpoint for nodes, on a shared ``httpx.Client``.

    >>> client = Client(bind(job), ClientPool(timeout=10.0))  # doctest: +SKIP
    >>> client.query(Task(7, 1, "A1", "Alpha", "core", ""))  # doctest: +SKIP
    [Item(id='A1.1', name='...', type='...', payload='{...}'), ...]
    """

    # Its items are made by its ``Mapper``, Items of strings each: not checked again.
    items_are_checked = True

    def __init__(self, bound: BoundJob, http: HTTP, gate: Gate | None = None) -> None:
        job = self.job = bound.job
        request = bound.request
        self.http = http
        self.gate = gate or Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(1 << 30))
        self.redactor = bound.redactor()
        # [auth]: the Authorization value and its renewal; None: a 401 stops the run at once.
        self.auth = authorizer_for(
            bound, http, stop=self.gate.stop, protect=self._protect, redact=self.redactor.redact
        )
        if self.auth is not None:
            self.http = http = AuthorizedHTTP(http, self.auth, refuses=self._refuses)
        self._retry_on = job.retry.retry_on
        # Fixed headers go on the shared client once; only templated ones travel per call.
        shared = {k: t.render({}) for k, t in request.headers.items() if t.is_literal}
        http.headers.update(shared)
        # Level 0 is the source's call (the level-1 list); level N, the queries of its nodes.
        self._rules: dict[tuple[Rule, ...], Rules] = {}  # one Rules for levels sharing them
        self._asking = {
            level: self._asking_of(bound, level, shared) for level in range(job.crawl.max_depth)
        }
        # The rules that may renew the credentials, for ``_refuses`` (none, as a rule).
        self._renewing = [rules for rules in self._rules.values() if rules.renews]
        self._pacing = job.rate.adaptive  # read rate-limit headers
        self._timeout_args: dict[float, Any] = {}
        self._proxy = bound.proxy  # None: the environment's, if any
        if bound.source_url is not None:
            self._source_url = bound.source_url

    def _asking_of(self, bound: BoundJob, level: int, shared: Mapping[str, str]) -> _Asking:
        job = bound.job
        request = bound.request if level == 0 else bound.request_of(level)
        response = job.response if level == 0 else job.response_of(level)
        headers = {
            name: template
            for name, template in request.headers.items()
            if not (template.is_literal and shared.get(name) == template.render({}))
        }
        return _Asking(
            method=job.request.method if level == 0 else job.request_of(level).method,
            url=request.url,
            params=request.params,
            body=_compile_json(request.body) if request.body is not None else None,
            headers=headers,
            mapper=Mapper(response, shape_of(job.crawl, level + 1)),
            pages=response.pagination,
            rules=self._rules.setdefault(response.rules, Rules(response.rules)),
            message=response.message,
            max_body=job.request.max_body if level == 0 else job.level(level).max_body,
            max_body_key=_max_body_key(job, level),
            streams=_streamed_path(response),
        )

    @staticmethod
    def _headers(asking: _Asking, values: Mapping[str, str]) -> dict[str, str] | None:
        if not asking.headers:
            return None
        return {k: t.render(values) for k, t in asking.headers.items()}

    def query(self, task: Task, timeout: float) -> list[Item] | Streamed:
        """``task``'s children: one HTTP call, or one per page when the API paginates."""
        values = {
            "id": task.id,
            "name": task.name,
            "type": task.type,
            "level": str(task.level),
            "parent_id": task.parent_id,
        }
        asking = self._asking[task.level]
        url = asking.url.render(values, quote_segment)
        params = {k: t.render(values) for k, t in asking.params.items()}
        body = asking.body(values) if asking.body is not None else None
        headers = self._headers(asking, values)
        if asking.pages is None:
            document = self._call(
                asking.method, _with_query(url, params), body, headers, timeout, task.level
            )
            return [] if document is EMPTY else self._items(asking, document, url)
        return self._all_pages(asking, url, params, body, headers, timeout, task.level)

    def _all_pages(
        self,
        asking: _Asking,
        url: str,
        params: dict[str, str],
        body: Any,
        headers: dict[str, str] | None,
        timeout: float,
        level: int,
    ) -> list[Item]:
        """Every page, in order; any failure fails the whole query (nothing is kept)."""
        items: list[Item] = []
        assert asking.pages is not None
        pager = Pager(asking.pages, self.redactor.redact, lookup)
        for _ in range(MAX_PAGES):
            if pager.next_url is not None:  # link and next_url modes, after the first page
                call_url, call_body = pager.next_url, body
            elif asking.method == "GET" or not isinstance(body, dict):
                call_url, call_body = _with_query(url, {**params, **pager.extra()}), body
            else:
                call_url, call_body = _with_query(url, params), {**body, **pager.extra()}
            answers: list[httpx.Response] = []
            document = self._call(
                asking.method, call_url, call_body, headers, timeout, level, answers.append
            )
            if document is EMPTY:  # a rule said "no (more) children": the pages end here
                return items
            found = self._items(asking, document, call_url)
            assert isinstance(found, list)  # a paginated answer is never streamed
            items += found
            answer = answers[0] if answers else None
            if not pager.advance(document, answer, found=found, url=call_url):
                return items
        raise QueryError(f"more than {MAX_PAGES} pages for one node", transient=False)

    def load_roots(self) -> Iterable[Item]:
        """The level-1 nodes, from the source URL (fetched now) or file (read as they are
        taken: a long list never sits in memory whole)."""
        asking = self._asking[0]
        if self.job.source.file is not None:
            return read_source_file(self.job.source.file, self.job.response, asking.mapper.shape)
        headers = self._headers(asking, _NO_NODE)
        source = asking._replace(method="GET")
        timeout = self.job.request.timeout
        if source.pages is not None and source.pages.mode in _POINTED:
            # The answer points to the next page itself (a Link header, a URL in the body):
            # follow it, as for a node's children; stopping at the first page would lose
            # the level-1 nodes of the others, and every tree under them, without a word.
            return self._all_pages(source, self._source_url, {}, None, headers, timeout, 0)
        document = self._call("GET", self._source_url, None, headers, timeout)
        return [] if document is EMPTY else self._items(source, document, self._source_url)

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
        asking = self._asking[level]
        with self.gate.slot(level) as outcome:
            try:
                response = self.http.request(
                    method, url, json=body, headers=headers, timeout=self._timeout_arg(timeout)
                )
            except BodyTooLarge as exc:  # the answer came; it is one no retry makes smaller
                outcome.kind = PERMANENT
                raise self._too_large(asking, method, url, exc.announced) from None
            except httpx.HTTPError as exc:
                outcome.kind = FAILURE
                where = self.redactor.redact(f"{method} {_url_of(exc, url)}")
                problem = tls_problem(exc)  # a certificate refused: no retry mends it
                if problem is not None:  # every call would fail so: the runner stops
                    raise TlsError(f"{problem} ({where})") from exc
                if isinstance(exc, httpx.ProxyError) and _PROXY_REFUSED.search(str(exc)):
                    said = self.redactor.redact(" ".join(str(exc).split()))
                    raise ProxyAuthError(f"{_PROXY_AUTH} ({said}; {where})") from exc
                reason = self.redactor.redact(str(exc) or type(exc).__name__)
                raise QueryError(
                    f"{type(exc).__name__} on {where}: {reason}", transient=True
                ) from exc
            outcome.status = response.status_code
            if len(response.content) > asking.max_body:  # a level's cap below the pool's
                outcome.kind = PERMANENT
                raise self._too_large(asking, method, url, None)
            if self._pacing:
                outcome.limits = parse_rate_limits(response.headers)
            answer = Body(response.content, self._streams(asking, response.content))
            if asking.rules and (verdict := asking.rules.judge(response.status_code, answer)):
                outcome.rule, outcome.then = verdict.rule, verdict.then
                return self._decided(asking, verdict, answer, method, response, outcome, on_answer)
            if response.status_code == 401:  # never a node's fault: the runner stops the run
                raise self._refused(asking, method, response, answer)
            if response.status_code == 407:  # nor is the proxy's refusal (plain HTTP)
                where = self.redactor.redact(f"{method} {response.url}")
                raise ProxyAuthError(f"{_PROXY_AUTH} (HTTP 407 from the proxy; {where})")
            if response.status_code < 300:
                outcome.kind = SUCCESS
                return self._document(asking, answer, method, response, on_answer)
            problem = _certificate_problem(response.status_code, answer)
            if problem is not None:  # nor is this: every call gets the same answer
                where = self.redactor.redact(f"{method} {response.url}")
                said = self._said(asking, response, answer)
                raise TlsError(
                    f"HTTP {response.status_code} from {where} ({problem}: [request.tls]"
                    f" client_cert): {said}"
                )
            error = self._error(asking, method, response, answer)
            outcome.kind = kind_of_status(
                response.status_code, error.retry_after, self._retry_on, self.gate.sheds_load
            )
            outcome.retry_after = error.retry_after
            error.throttled = outcome.kind == THROTTLE
            raise error

    def _document(
        self,
        asking: _Asking,
        answer: Body,
        method: str,
        response: httpx.Response,
        on_answer: Callable[[httpx.Response], object] | None,
    ) -> Any:
        """The decoded body of an answer to read items from; a QueryError if it is not JSON."""
        document = answer.document
        if document is NOT_JSON:
            raise self._error(asking, method, response, answer)
        # orjson refuses a lone surrogate; json takes one, so a body it decoded is looked
        # through (rare, and then only is the document; a streamed page was in ``_streams``).
        if (
            answer.streams is None
            and not answer.surrogate_free
            and _may_hold_surrogates(answer.content)
        ):
            _refuse_lone_surrogates(document, method, self.redactor.redact(str(response.url)))
        if on_answer is not None:
            on_answer(response)
        return document

    def _decided(
        self,
        asking: _Asking,
        verdict: Verdict,
        answer: Body,
        method: str,
        response: httpx.Response,
        outcome: CallOutcome,
        on_answer: Callable[[httpx.Response], object] | None,
    ) -> Any:
        """What a rule said, through the same paths as a status would: ``ok`` reads the
        items, ``empty`` ends with none, ``renew`` is a 401, ``stop`` stops the run, and
        ``retry`` / ``throttle`` / ``fail`` are a transient failure, a throttle, a
        permanent failure (``wait`` standing for Retry-After)."""
        then = verdict.then
        outcome.kind = RULE_KINDS[then]
        if then == "ok":
            return self._document(asking, answer, method, response, on_answer)
        if then == "empty":
            return EMPTY
        if then == "renew":
            raise self._refused(asking, method, response, answer, verdict)
        where = self.redactor.redact(f"{method} {response.url}")
        said = self._said(asking, response, answer)
        what = f"rule {verdict.rule} ({then}) on HTTP {response.status_code} from {where}"
        if then == "stop":
            raise StopError(f"{what}: the API said: {said}")
        retry_after = verdict.wait
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        outcome.retry_after = retry_after
        error = QueryError(
            f"{what}: {said}",
            transient=then != "fail",
            status=response.status_code,
            retry_after=retry_after,
        )
        error.throttled = then == "throttle"
        raise error

    def _too_large(
        self,
        asking: _Asking,
        method: str,
        url: str,
        announced: int | None,
    ) -> QueryError:
        """The permanent failure of an answer larger than its level's cap, in one line
        naming the sizes and the key."""
        if announced is not None:
            what = f"{size_text(announced)} announced"
        else:
            what = f"more than {size_text(asking.max_body)} sent"
        where = self.redactor.redact(f"{method} {url}")
        return QueryError(
            f"answer larger than {asking.max_body_key} ({size_text(asking.max_body)}):"
            f" {what} ({where})",
            transient=False,
        )

    @staticmethod
    def _streams(asking: _Asking, content: bytes) -> str | None:
        """The items path, for a body big enough to leave its items in its bytes (and
        that cannot hold a lone surrogate, which only a whole decode checks)."""
        if asking.streams is None or len(content) <= BIG_BODY:
            return None
        return None if _may_hold_surrogates(content) else asking.streams

    def _refuses(self, response: httpx.Response) -> bool:
        """Whether an answer refuses the credentials, so that ``AuthorizedHTTP`` renews
        them once and sends the call again: a 401, or a rule's ``renew`` (any level's:
        the answer does not say which level asked)."""
        if response.status_code == 401:
            return True
        if not self._renewing:
            return False
        body = Body(response.content)
        for rules in self._renewing:
            verdict = rules.judge(response.status_code, body)
            if verdict is not None and verdict.then == "renew":
                return True
        return False

    def _said(self, asking: _Asking, response: httpx.Response, answer: Body) -> str:
        """What the API said: its own message (``response.message``), else the start of
        the body."""
        where = asking.message
        message = api_message(answer.document, where) if where else None
        return self.redactor.redact(message) if message else self._excerpt(_text(response))

    def _protect(self, secrets: Iterable[str]) -> None:
        """Mask values [auth] made or obtained (a token) in messages and logs from now on."""
        values = list(secrets)
        self.redactor.add(values)
        logs.protect(values)

    def _refused(
        self,
        asking: _Asking,
        method: str,
        response: httpx.Response,
        answer: Body,
        verdict: Verdict | None = None,
    ) -> AuthError:
        """The AuthError for a 401 (or a rule's ``renew``) that no renewal mends."""
        where = self.redactor.redact(f"{method} {response.url}")
        status = f"HTTP {response.status_code}"
        if verdict is not None:
            status = f"rule {verdict.rule} (renew) on {status}"
        if self.auth is None:
            what = "the request's credentials (the job has no [auth] to renew them)"
            if self._through_proxy(response.url):  # tinyproxy answers a wrong password so
                what += f"; or a proxy refused its own: {_PROXY_CHECK}"
        elif self.auth.renewable:
            what = f"{self.auth.what}, even renewed"
        else:
            what = self.auth.what
        said = self._said(asking, response, answer)
        return AuthError(f"{status} from {where}: the API refused {what}; it said: {said}")

    def _through_proxy(self, url: httpx.URL) -> bool:
        """A plain-HTTP call to ``url`` went through a proxy, whose 401 comes as an answer
        (to an HTTPS call's CONNECT, it comes as a ``ProxyError``)."""
        if url.scheme != "http":
            return False
        return self._proxy is not None or EnvironmentProxies().of(url) is not None

    def _items(self, asking: _Asking, document: Any, url: str) -> list[Item] | Streamed:
        try:
            return asking.mapper.items(document)
        except MappingError as exc:
            where = self.redactor.redact(f"{asking.method} {url}")
            message = api_message(document, asking.message)
            if message:
                said = f"the API said: {self.redactor.redact(message)}"
            else:
                try:
                    said = "body: " + self._excerpt(_shown(document, asking.mapper.response.items))
                except (ValueError, RecursionError):
                    said = "body: (too deeply nested to show)"
            raise QueryError(f"{exc} (from {where}); {said}", transient=False) from None

    def _timeout_arg(self, seconds: float) -> Any:
        """The shared client's own timeout when it is the same (httpx builds none then)."""
        arg = self._timeout_args.get(seconds)
        if arg is None:
            same = httpx.Timeout(seconds) == self.http.timeout
            arg = self._timeout_args[seconds] = httpx.USE_CLIENT_DEFAULT if same else seconds
        return arg

    def _error(
        self, asking: _Asking, method: str, response: httpx.Response, answer: Body
    ) -> QueryError:
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
            f"HTTP {status} from {where}: {self._said(asking, response, answer)}",
            transient=status in self._retry_on,
            status=status,
            retry_after=retry_after,
        )

    def _excerpt(self, text: str) -> str:
        """The start of a body on one line: its line breaks (CRLF in nginx's pages, say) and
        runs of blanks one space, any other control character escaped (a terminal shown a
        carriage return would write over the start of the line)."""
        text = one_line(" ".join(text[:BODY_EXCERPT].split()))
        return self.redactor.redact(text) if text else "(empty body)"


# How nginx, asking for a client certificate after the handshake, says that none, or none it
# trusts, came: 496 or 495 (its own codes), or 400 with its page for either. Only its page's
# title is taken: an API's 400 may well speak of certificates (of one node's).
_WANTED = "the server wants a client certificate"
_REFUSED = "the server refused the client certificate"
_NGINX_PAGES = (
    (b"<title>400 No required SSL certificate was sent</title>", _WANTED),
    (b"<title>400 The SSL certificate error</title>", _REFUSED),
)
_NGINX_STATUSES = {496: _WANTED, 495: _REFUSED}


def _certificate_problem(status: int, answer: Body) -> str | None:
    """What a TLS server's answer after the handshake says of our certificate, or None."""
    if status == 400:
        start = answer.content[:1024]
        return next((problem for page, problem in _NGINX_PAGES if page in start), None)
    return _NGINX_STATUSES.get(status)


# A proxy refusing its credentials, as either engine words it:
# - an HTTP proxy's 407 (curl: "CONNECT tunnel failed, response 407"; httpx: "407 Proxy
#   Authentication Required");
# - its 401 to a CONNECT, which only the proxy answers (tinyproxy's answer to a wrong
#   password; curl: "... response 401"; httpx: "401 Unauthorized");
# - a SOCKS5 proxy's refusal (curl: "User was rejected by the SOCKS5 server", "No
#   authentication method was acceptable"; httpx: "Invalid username/password", "Requested
#   NO AUTHENTICATION REQUIRED from proxy server, but got ...").
_PROXY_REFUSED = re.compile(
    r"(?i)\b407\b|response 401\b|^401\b"
    r"|rejected by the socks|no authentication method was acceptable"
    r"|invalid username/password|requested no authentication required"
)
_PROXY_CHECK = (
    "check the user and password in request.proxy (or HTTP_PROXY / HTTPS_PROXY / ALL_PROXY)"
)
_PROXY_AUTH = f"the proxy refused its credentials — {_PROXY_CHECK}"


def _streamed_path(response: Response) -> str | None:
    """The items path, when a big answer's items may stay in its bytes (``streamed``):
    no pagination (which reads the page it counts) and no rule, ``wait`` or message
    path inside the items; None otherwise."""
    path = response.items
    if not path or response.pagination is not None:
        return None
    paths = [response.message or ""]
    for rule in response.rules:
        paths += [rule.wait or "", rule.condition.field if rule.condition else ""]
    inside = any(p == path or p.startswith(path + ".") for p in paths)
    return None if inside else path


_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")  # \ud800-\udfff in a JSON body
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")  # the same in UTF-8's bytes


def _may_hold_surrogates(content: bytes) -> bool:
    """Whether a body may decode to a lone surrogate: it has an escape of one, or one in
    UTF-8 bytes (``json`` decodes those too), or it is in UTF-16 or UTF-32, where neither
    search sees. Two searches, not one of two branches: a tenth of the time."""
    return (
        _SURROGATE_ESCAPE.search(content) is not None
        or _SURROGATE_BYTES.search(content) is not None
        or content[:2] in _UTF16_BOMS  # UTF-16 or UTF-32, as ``json.detect_encoding`` tells:
        or b"\x00" in content[:4]  # a BOM, or a NUL among the first bytes (never in UTF-8 JSON)
    )


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32-LE's starts as UTF-16-LE's


def _refuse_lone_surrogates(document: Any, method: str, where: str) -> None:
    """A JSON escape can make a lone surrogate (\\ud800), which no UTF-8 text (nor the
    checkpoint) can hold: refuse the answer rather than fail when storing it."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(
            f"the body from {method} {where} holds a lone UTF-16 surrogate (a \\ud800-\\udfff"
            " character, not half of a pair): it cannot be stored",
            transient=False,
        ) from None
    except (ValueError, RecursionError):
        return  # too deep: the mapping says so


def _shown(document: Any, items_path: str) -> str:
    """A decoded body as a message shows it: its JSON, or the start of the body itself
    when its items stayed in its bytes (``streamed``)."""
    try:
        found = lookup(document, items_path)
    except KeyError:
        found = None
    if isinstance(found, LazyItems):
        return found.head(BODY_EXCERPT)
    return json.dumps(document, ensure_ascii=False)


def _text(response: httpx.Response) -> str:
    """The body as text for a message, whatever charset the server claims (an unknown or
    lying one falls back to UTF-8 with replacement characters)."""
    try:
        return response.text
    except Exception:
        return response.content.decode("utf-8", errors="replace")


def _max_body_key(job: Job, level: int) -> str:
    """The key that sets the cap on the answers about ``level``'s nodes."""
    if level and job.level(level).max_body != job.request.max_body:
        return f"levels.{level}.max_body"
    return "request.max_body"


def size_text(size: int) -> str:
    """A size as people write it: "256 MiB", "800 MB"... (binary when it is whole)."""
    for unit, factor, below in (
        ("GiB", 1024**3, None),
        ("MiB", 1024**2, 1024**3),
        ("KiB", 1024, 1024**2),
    ):
        if factor <= size and (below is None or size < below) and size % factor == 0:
            return f"{size // factor} {unit}"
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


def _with_query(url: str, params: Mapping[str, Any]) -> str:
    # Encoded here, once: handing httpx a params dict costs a second URL parse.
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{_query_string(params)}"


def _query_string(params: Mapping[str, Any]) -> str:
    """``urlencode(params)``, to the character, in half its time (a Chinese name: a third)."""
    pairs = []
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return urlencode(params)  # a page number, say: urlencode's own way
        pairs.append(f"{quote_query(name)}={quote_query(value)}")
    return "&".join(pairs)


def _url_of(exc: httpx.HTTPError, fallback: str) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # no request attached
        return fallback
