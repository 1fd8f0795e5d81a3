"""Where the ``Authorization`` value comes from: ``[auth]`` at run time.

One ``Authorizer`` holds the value every worker thread sends: a fixed one
(``basic``, ``bearer`` with ``token``) or a token it fetches (OAuth2 client
credentials, RFC 6749 4.4, or a ``token_command``). A token is fetched once
for all threads (single flight: one thread fetches, the others wait for it),
renewed shortly before it expires (``renew_at``) and after a 401: the first
call refused with a token drops it, so every call refused with that same token
waits for one renewal and is sent again, without spending a retry attempt
(``AuthorizedHTTP``). The token URL is retried like any call (the job's
``[retry]``: Retry-After, backoff); when it, or the command, fails for good,
``AuthError`` says so, and the runner stops the run: a 401 is never a node's
fault.

Every value a token source returns is handed to ``protect`` (the run's
``Redactor`` and the log's masking) the moment it is obtained, before anything
could print it. Fetches run on the threads that call: the workers, never the
coordinator's ``Runner.step`` (only the one source call, made before any
query starts, may fetch the first token). The clock is injected so that tests
drive expiry without waiting.

This module knows nothing of the database or the runner; it makes its HTTP
calls through the HTTP object it is given (the run's ``ClientPool``).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx

from resumer.errors import AuthError, QueryError, describe
from resumer.http.pool import HTTP
from resumer.http.ratelimits import parse_retry_after
from resumer.job.bound import BoundJob
from resumer.job.wire import header_value_problem
from resumer.policies.retry import Retrier, RetryPolicy, Stopped

log = logging.getLogger(__name__)

TOKEN_COMMAND_TIMEOUT = 60.0  # seconds a token_command may run before it counts as failed
RENEW_SHARE = 0.1  # a token is renewed when this share of its lifetime is left,
RENEW_BEFORE = 30.0  # or this many seconds, whichever is more,
RENEW_NOT_BEFORE = 0.75  # but never before this share of its lifetime has passed
WAIT_POLL = 0.25  # seconds between two looks at the stop flag while a fetch is awaited
EXCERPT = 200  # characters of a token URL's error or a command's stderr quoted


def _nothing(_values: Iterable[str]) -> None:
    return None


def _same(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class Token:
    """What a token source returned: the token, and its lifetime if it said."""

    value: str
    lifetime: float | None = None  # seconds; None: unknown (renewed after a 401 only)


@dataclass(frozen=True, slots=True, eq=False)
class Credential:
    """One ``Authorization`` value and its times on the authorizer's clock.

    Compared by identity: a 401 names the credential it was sent with, so a
    renewal happens once however many calls were refused with it.
    """

    header: str
    renew_at: float = math.inf  # from then, one caller renews; the others keep sending it
    expires_at: float = math.inf  # from then, every caller waits for the renewal


def renewal_times(started: float, lifetime: float | None) -> tuple[float, float]:
    """When a token obtained at ``started`` is renewed, and when it expires.

    Renewed when 10% of its lifetime, or 30 s, is left, whichever is more, but
    never before 75% of it has passed (so a 1 s token is renewed 4 times a
    second at most, a 1 h one 6 min before it ends, a 60 s one at 45 s).

    >>> renewal_times(0.0, 3600.0)
    (3240.0, 3600.0)
    >>> renewal_times(0.0, 100.0)
    (75.0, 100.0)
    """
    if lifetime is None:
        return math.inf, math.inf
    margin = min(max(RENEW_SHARE * lifetime, RENEW_BEFORE), (1 - RENEW_NOT_BEFORE) * lifetime)
    return started + lifetime - margin, started + lifetime


class Authorizer:
    """The one ``Authorization`` value of a run, shared by every thread.

    ``fetch`` gets a fresh token (a token URL, a command); ``static`` is a fixed
    value instead (nothing to renew: a 401 stops the run at once).

    >>> auth = Authorizer(lambda: Token("abc", 60.0))
    >>> credential = auth.current()
    >>> credential.header
    'Bearer abc'
    >>> auth.refused(credential), auth.current().header, auth.fetches
    (True, 'Bearer abc', 2)
    """

    def __init__(
        self,
        fetch: Callable[[], Token] | None = None,
        *,
        static: str | None = None,
        what: str = "the [auth] token",
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
        protect: Callable[[Iterable[str]], None] = _nothing,
    ) -> None:
        if (fetch is None) == (static is None):
            raise ValueError("an Authorizer takes a fetch or a static value, one of the two")
        self.what = what  # what the API refuses, in messages
        self.fetches = 0  # tokens obtained so far
        self.waiting = 0  # callers waiting for a fetch now (for tests: single flight)
        self._fetch = fetch
        self._clock = clock
        self._stop = stop or threading.Event()
        self._protect = protect
        self._cond = threading.Condition()
        self._credential = Credential(static) if static is not None else None
        self._fetching = False  # one thread is fetching (single flight)
        self._failure: str | None = None  # why no token can be had: every caller is told

    @property
    def renewable(self) -> bool:
        return self._fetch is not None

    def current(self) -> Credential:
        """The value to send now: fetched first if there is none or it has expired
        (one thread fetches, the others wait), renewed by one caller once due.

        ``AuthError`` when no token can be had; ``Stopped`` if a stop comes while
        waiting for one."""
        with self._cond:
            while True:
                if self._failure is not None:
                    raise AuthError(self._failure)
                credential, now = self._credential, self._clock()
                if credential is not None and now < credential.expires_at:
                    if now < credential.renew_at or self._fetching:
                        return credential
                    break  # due: this caller renews while the others keep sending it
                if not self._fetching:
                    break
                if self._stop.is_set():
                    raise Stopped
                self.waiting += 1
                try:
                    self._cond.wait(WAIT_POLL)
                finally:
                    self.waiting -= 1
            self._fetching = True
        return self._renew()

    def refused(self, credential: Credential) -> bool:
        """A call sent with ``credential`` got a 401. True if sending it again with
        ``current()`` may help: the first refusal of a credential drops it, so one
        renewal serves every call refused with it. False: nothing can be renewed."""
        if self._fetch is None:
            return False
        with self._cond:
            if self._credential is credential:
                self._credential = None
                log.info("auth: token %d refused: renewing it", self.fetches)
        return True

    def _renew(self) -> Credential:
        assert self._fetch is not None
        started = self._clock()
        failure: AuthError | None = None
        try:
            token = self._fetch()
            self._protect([token.value])
            problem = header_value_problem(token.value)
            if problem:
                failure = AuthError(f"{self.what} cannot be sent: it {problem}")
        except Stopped:
            with self._cond:
                self._fetching = False
                self._cond.notify_all()
            raise
        except AuthError as error:
            failure = error
        except Exception as error:  # a bug in a source must stop the run, not fail every node
            log.debug("the token source failed", exc_info=error)
            failure = AuthError(f"{self.what} could not be obtained ({describe(error)})")
        with self._cond:
            self._fetching = False
            self._cond.notify_all()
            if failure is not None:
                self._failure = str(failure)
                raise failure
            renew_at, expires_at = renewal_times(started, token.lifetime)
            credential = Credential(f"Bearer {token.value}", renew_at, expires_at)
            self._credential = credential
            self.fetches += 1
        valid = "" if token.lifetime is None else f", valid {token.lifetime:g}s"
        log.info("auth: token %d obtained%s", self.fetches, valid)
        return credential


class AuthorizedHTTP:
    """An HTTP side whose calls carry the authorizer's ``Authorization``; a call
    answered 401 is sent once more with the renewed value (the renewal shared by
    every call refused with the same one; ``refuses`` says which answers refuse them).
    A refusal that remains is the caller's.

    >>> http = AuthorizedHTTP(httpx.Client(), Authorizer(static="Basic dTpw"))  # doctest: +SKIP
    """

    def __init__(
        self,
        http: HTTP,
        authorizer: Authorizer,
        refuses: Callable[[httpx.Response], bool] = lambda response: response.status_code == 401,
    ) -> None:
        self.http = http
        self.authorizer = authorizer
        self.refuses = refuses  # a 401, or an answer a rule says refuses the credentials

    @property
    def headers(self) -> httpx.Headers:
        return self.http.headers

    @property
    def timeout(self) -> httpx.Timeout:
        return self.http.timeout

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        content: Any = None,
    ) -> httpx.Response:
        call = {"json": json, "timeout": timeout, "content": content}
        credential = self.authorizer.current()
        response = self._send(method, url, headers, credential, call)
        if self.refuses(response) and self.authorizer.refused(credential):
            response = self._send(method, url, headers, self.authorizer.current(), call)
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: Any,
        credential: Credential,
        call: dict[str, Any],
    ) -> httpx.Response:
        sent = {**(headers or {}), "Authorization": credential.header}
        return self.http.request(method, url, headers=sent, **call)


class ClientCredentials:
    """OAuth2 client credentials (RFC 6749 4.4): POST ``grant_type=client_credentials``
    to the token URL, the client authenticated by HTTP basic (2.3.1, the default) or
    by form fields; read ``access_token`` and ``expires_in`` from the JSON answer."""

    def __init__(
        self,
        http: HTTP,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        retrier: Retrier,
        timeout: float,
        retry_on: frozenset[int],
        scope: str | None = None,
        client_auth: str = "basic",
        redact: Callable[[str], str] = _same,
    ) -> None:
        self.url = url
        self._http = http
        self._retrier = retrier
        self._timeout = timeout
        self._retry_on = retry_on
        self._redact = redact
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        self.headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if client_auth == "form":
            form |= {"client_id": client_id, "client_secret": client_secret}
        else:  # RFC 6749 2.3.1: each form-encoded, then joined and base64-encoded
            pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
            self.headers["Authorization"] = "Basic " + _b64(pair)
        self.body = urlencode(form).encode()

    def secrets(self) -> list[str]:
        """What this source sends that must be masked besides the ``${VAR}`` values."""
        basic = self.headers.get("Authorization", "")
        return [basic.removeprefix("Basic ")] if basic else []

    def __call__(self) -> Token:
        try:
            return self._retrier.call(self._ask, "the [auth] token URL")
        except QueryError as error:
            raise AuthError(f"[auth] no token from the token URL: {error}") from None

    def _ask(self) -> Token:
        where = f"POST {self._redact(self.url)}"
        try:
            response = self._http.request(
                "POST", self.url, content=self.body, headers=self.headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise QueryError(f"{type(exc).__name__} on {where}: {reason}", transient=True) from exc
        status = response.status_code
        if status in self._retry_on:
            after = parse_retry_after(response.headers.get("Retry-After"))
            raise QueryError(
                f"HTTP {status} from {where}", transient=True, status=status, retry_after=after
            )
        if not 200 <= status < 300:
            raise AuthError(
                f"[auth] the token URL refused the client credentials (HTTP {status} from "
                f"{where}{self._said(response)})"
            )
        try:
            document = json.loads(response.content)
        except (ValueError, RecursionError):
            document = None
        return _token_of(document, f"the answer of {where}")

    def _said(self, response: httpx.Response) -> str:
        """RFC 6749 5.2's ``error`` and ``error_description``, when the answer has them."""
        try:
            document = json.loads(response.content)
        except (ValueError, RecursionError):
            return ""
        if not isinstance(document, dict):
            return ""
        said = [str(document[k]) for k in ("error", "error_description") if k in document]
        return f": {self._redact(': '.join(said))[:EXCERPT]}" if said else ""


class TokenCommand:
    """A ``token_command``: run by the shell; its stdout is the token, or JSON with
    ``access_token`` (and ``expires_in``). A non-zero exit, a timeout or nothing
    printed is a failure; stdout is never quoted (it may be the token), stderr's
    first line is (masked)."""

    def __init__(
        self,
        command: str,
        *,
        timeout: float = TOKEN_COMMAND_TIMEOUT,
        redact: Callable[[str], str] = _same,
    ) -> None:
        self.command = command
        self._timeout = timeout
        self._redact = redact

    def __call__(self) -> Token:
        try:
            process = subprocess.Popen(
                self.command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: a timeout kills its children too
            )
        except OSError as exc:
            raise AuthError(f"[auth] token_command could not start ({exc.strerror})") from None
        try:
            out, err = process.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise AuthError(
                f"[auth] token_command did not finish within {self._timeout:g}s"
            ) from None
        if process.returncode != 0:
            code = process.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise AuthError(f"[auth] token_command failed ({how}){self._stderr(err)}")
        text = out.decode("utf-8", errors="replace").strip()
        if not text:
            raise AuthError(
                "[auth] token_command printed nothing (expected the token, or JSON with "
                f"access_token){self._stderr(err)}"
            )
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except (ValueError, RecursionError):
                document = None
            return _token_of(document, "token_command's output")
        if len(text.split()) != 1:
            raise AuthError(
                "[auth] token_command printed more than one word (expected the token alone, "
                "or JSON with access_token)"
            )
        return Token(text)

    def _stderr(self, err: bytes) -> str:
        lines = [line.strip() for line in err.decode("utf-8", errors="replace").splitlines()]
        said = next((line for line in lines if line), "")
        return f": {self._redact(said)[:EXCERPT]}" if said else ""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.communicate()


def _token_of(document: Any, where: str) -> Token:
    """The token in an RFC 6749 5.1 answer: ``access_token``, and ``expires_in`` if usable."""
    token = document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        what = "is not JSON" if document is None else "has no access_token string"
        raise AuthError(f"[auth] {where} {what}")
    return Token(token, _lifetime(document.get("expires_in")))


def _lifetime(value: Any) -> float | None:
    """``expires_in`` as seconds (a number, or a numeric string); None if unusable."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def authorizer_for(
    bound: BoundJob,
    http: HTTP,
    *,
    stop: threading.Event,
    protect: Callable[[Iterable[str]], None] = _nothing,
    redact: Callable[[str], str] = _same,
    clock: Callable[[], float] = time.monotonic,
) -> Authorizer | None:
    """The authorizer for the job's ``[auth]`` (None without one), its ``${VAR}``s filled.
    ``protect`` is told every secret value it makes or obtains; ``redact`` masks the
    messages it writes."""
    settings = bound.auth
    if settings is None:
        return None
    job = bound.job

    if settings.type == "basic":
        value = _b64(f"{settings.username or ''}:{settings.password or ''}")
        protect([value])
        return Authorizer(static=f"Basic {value}", what="the [auth] basic credentials")
    if settings.token is not None:
        return Authorizer(static=f"Bearer {settings.token}", what="the [auth] bearer token")
    retry = job.retry
    retrier = RetryPolicy(retry.attempts, retry.initial, retry.max, retry.multiplier).bind(stop)
    fetch: Callable[[], Token]
    if settings.token_command is not None:
        fetch = TokenCommand(settings.token_command, redact=redact)
        what = "the token from [auth] token_command"
    else:
        source = ClientCredentials(
            http,
            settings.token_url or "",
            settings.client_id or "",
            settings.client_secret or "",
            retrier=retrier,
            timeout=job.request.timeout,
            retry_on=retry.retry_on,
            scope=settings.scope or None,
            client_auth=settings.client_auth,
            redact=redact,
        )
        protect(source.secrets())
        fetch, what = source, "the [auth] oauth2 token"
    return Authorizer(fetch, what=what, clock=clock, stop=stop, protect=protect)
