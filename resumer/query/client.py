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

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from resumer.errors import AuthError, QueryError, StopError, TlsError
from resumer.http.auth import AuthorizedHTTP, authorizer_for
from resumer.http.pool import HTTP
from resumer.http.ratelimits import parse_rate_limits, parse_retry_after
from resumer.http.tls import tls_problem
from resumer.job.bound import BoundJob
from resumer.job.settings import Pagination
from resumer.job.template import PLACEHOLDERS, Template, quote_segment
from resumer.model import Item, Task
from resumer.ops import logs
from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.gate import CallOutcome, Gate
from resumer.query.answers import (
    EMPTY,
    FAILURE,
    NOT_JSON,
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
from resumer.query.sources import read_source_file

BODY_EXCERPT = 200  # characters of a response body kept in an error message
MAX_PAGES = 100_000  # pages of one node's children at most: a runaway cursor ends here
_NO_NODE = dict.fromkeys(PLACEHOLDERS, "")  # placeholder values for the source call

_Render = Callable[[Mapping[str, str]], Any]


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
        self._rules = Rules(job.response.rules)
        self._message = job.response.message  # where the API puts its own error text
        if self.auth is not None:
            self.http = http = AuthorizedHTTP(http, self.auth, refuses=self._refuses)
        self._retry_on = job.retry.retry_on
        self._method = job.request.method
        self._url = request.url
        self._params = request.params
        self._body = _compile_json(request.body) if request.body is not None else None
        headers = request.headers
        # Fixed headers go on the shared client once; only templated ones travel per call.
        http.headers.update({k: t.render({}) for k, t in headers.items() if t.is_literal})
        self._node_headers = {k: t for k, t in headers.items() if not t.is_literal}
        self._mapper = Mapper(job.response)
        self._pages = job.response.pagination
        self._pacing = job.rate.adaptive  # read rate-limit headers
        self._timeout_args: dict[float, Any] = {}
        if bound.source_url is not None:
            self._source_url = bound.source_url

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
            return [] if document is EMPTY else self._items(document, self._method, url)
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
            if document is EMPTY:  # a rule said "no (more) children": the pages end here
                return items
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
        return [] if document is EMPTY else self._items(document, "GET", self._source_url)

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
            if self._pacing:
                outcome.limits = parse_rate_limits(response.headers)
            answer = Body(response.content)
            if self._rules and (verdict := self._rules.judge(response.status_code, answer)):
                outcome.rule, outcome.then = verdict.rule, verdict.then
                return self._decided(verdict, answer, method, response, outcome, on_answer)
            if response.status_code == 401:  # never a node's fault: the runner stops the run
                raise self._refused(method, response, answer)
            if response.status_code < 300:
                outcome.kind = SUCCESS
                return self._document(answer, method, response, on_answer)
            error = self._error(method, response, answer)
            outcome.kind = kind_of_status(
                response.status_code, error.retry_after, self._retry_on, self.gate.sheds_load
            )
            outcome.retry_after = error.retry_after
            error.throttled = outcome.kind == THROTTLE
            raise error

    def _document(
        self,
        answer: Body,
        method: str,
        response: httpx.Response,
        on_answer: Callable[[httpx.Response], object] | None,
    ) -> Any:
        """The decoded body of an answer to read items from; a QueryError if it is not JSON."""
        document = answer.document
        if document is NOT_JSON:
            raise self._error(method, response, answer)
        if _SURROGATE_ESCAPE.search(answer.content):  # rare: checked only then
            _refuse_lone_surrogates(document, method, self.redactor.redact(str(response.url)))
        if on_answer is not None:
            on_answer(response)
        return document

    def _decided(
        self,
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
            return self._document(answer, method, response, on_answer)
        if then == "empty":
            return EMPTY
        if then == "renew":
            raise self._refused(method, response, answer, verdict)
        where = self.redactor.redact(f"{method} {response.url}")
        said = self._said(response, answer)
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

    def _refuses(self, response: httpx.Response) -> bool:
        """Whether an answer refuses the credentials, so that ``AuthorizedHTTP`` renews
        them once and sends the call again: a 401, or a rule's ``renew``."""
        if response.status_code == 401:
            return True
        if not self._rules.renews:
            return False
        verdict = self._rules.judge(response.status_code, Body(response.content))
        return verdict is not None and verdict.then == "renew"

    def _said(self, response: httpx.Response, answer: Body) -> str:
        """What the API said: its own message (``response.message``), else the start of
        the body."""
        message = api_message(answer.document, self._message) if self._message else None
        return self.redactor.redact(message) if message else self._excerpt(_text(response))

    def _protect(self, secrets: Iterable[str]) -> None:
        """Mask values [auth] made or obtained (a token) in messages and logs from now on."""
        values = list(secrets)
        self.redactor.add(values)
        logs.protect(values)

    def _refused(
        self,
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
        elif self.auth.renewable:
            what = f"{self.auth.what}, even renewed"
        else:
            what = self.auth.what
        said = self._said(response, answer)
        return AuthError(f"{status} from {where}: the API refused {what}; it said: {said}")

    def _items(self, document: Any, method: str, url: str) -> list[Item]:
        try:
            return self._mapper.items(document)
        except MappingError as exc:
            where = self.redactor.redact(f"{method} {url}")
            message = api_message(document, self._message)
            if message:
                said = f"the API said: {self.redactor.redact(message)}"
            else:
                try:
                    said = "body: " + self._excerpt(json.dumps(document, ensure_ascii=False))
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

    def _error(self, method: str, response: httpx.Response, answer: Body) -> QueryError:
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
            f"HTTP {status} from {where}: {self._said(response, answer)}",
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


def _url_of(exc: httpx.HTTPError, fallback: str) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # no request attached
        return fallback
