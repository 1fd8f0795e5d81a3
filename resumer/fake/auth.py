"""The fake API's authorization side: a ``/token`` endpoint and the guard on the data.

``FakeAuth`` plays an OAuth2 authorization server for client credentials (RFC
6749 4.4: the client's id and secret by HTTP basic or in the form) issuing
short-lived random tokens, and the resource server's check of the
``Authorization`` header on every data endpoint (401 without a valid one). It
also accepts fixed bearer tokens and basic credentials, for the other
``[auth]`` types. Tests count the token requests, revoke every token or change
the accepted secret while serving (``POST /_auth``, or the methods); the clock
is injected so that expiry can be tested without waiting.

This module knows nothing of the tree or of HTTP framing: ``server.FakeAPI``
hands it each request's method, target, body and headers.

Tested by tests/integration/test_auth.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

Guarded = tuple[int, Any, tuple[tuple[str, str], ...]]  # status, JSON body, headers

DEFAULT_CLIENT_ID = "resumer"
DEFAULT_CLIENT_SECRET = "s3cret"  # the fake's, for trying it out; tests set their own
DEFAULT_TOKEN_TTL = 3600.0  # seconds a token issued by /token is accepted


class FakeAuth:
    """Issues tokens at ``/token`` and refuses data calls without a valid credential.

    >>> now = [0.0]
    >>> auth = FakeAuth(client_id="app", client_secret="pw", ttl=1.0, clock=lambda: now[0])
    >>> form = b"grant_type=client_credentials&client_id=app&client_secret=pw"
    >>> status, body, _ = auth.answer("POST", "/token", form, {})
    >>> status, body["expires_in"], auth.allows("Bearer " + body["access_token"])
    (200, 1, True)
    >>> now[0] = 1.0
    >>> auth.allows("Bearer " + body["access_token"])
    False
    """

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        ttl: float = DEFAULT_TOKEN_TTL,
        tokens: Iterable[str] = (),
        users: Mapping[str, str] | None = None,
        required: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.required = required  # False: /token works, the data endpoints take anyone
        self.static = set(tokens)  # bearer tokens accepted for ever
        self.users = dict(users or {})  # basic credentials accepted: user → password
        self.issued: list[str] = []  # every token /token gave, in order (tests look for leaks)
        self.token_requests = 0  # POST /token received, refused ones included
        self.refused = 0  # data calls answered 401
        self._expiry: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    # -- what tests call ---------------------------------------------------------

    def revoke(self) -> None:
        """Refuse every token issued so far (and the fixed ones)."""
        with self._lock:
            self._expiry.clear()
            self.static.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self.token_requests,
                "tokens_issued": len(self.issued),
                "refused": self.refused,
            }

    def allows(self, authorization: str | None) -> bool:
        """True if ``authorization`` (the header's value) is a valid credential now."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        with self._lock:
            if scheme.lower() == "bearer":
                expiry = self._expiry.get(value)
                return value in self.static or (expiry is not None and self._clock() < expiry)
            if scheme.lower() == "basic":
                user, password = _basic(value)
                return user is not None and self.users.get(user) == password
        return False

    # -- what the server calls ---------------------------------------------------

    def answer(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> Guarded | None:
        """The answer to a request this side handles (``/token``, ``/_auth``, or a data
        call refused with 401); None to let the server answer it."""
        path = target.partition("?")[0]
        if path == "/token":
            return self._token(method, body, headers)
        if path == "/_auth":
            return self._control(method, body)
        if path.startswith("/_") or not self.required or self.allows(headers.get("authorization")):
            return None
        with self._lock:
            self.refused += 1
        challenge = (("WWW-Authenticate", 'Bearer error="invalid_token"'),)
        return 401, {"error": "invalid_token", "error_description": "no valid token"}, challenge

    def _token(self, method: str, body: bytes, headers: Mapping[str, str]) -> Guarded:
        with self._lock:
            self.token_requests += 1
        if method != "POST":
            return 405, {"error": "invalid_request", "error_description": "POST only"}, ()
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, ()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # RFC 6749 2.3.1: each part form-encoded
            user, password = _basic(value.strip())
            client_id = unquote_plus(user) if user is not None else None
            client_secret = unquote_plus(password) if password is not None else None
        with self._lock:
            if (client_id, client_secret) != (self.client_id, self.client_secret):
                challenge = (("WWW-Authenticate", 'Basic realm="fake"'),)
                return 401, {"error": "invalid_client"}, challenge
            token = "tok-" + secrets.token_hex(16)
            self.issued.append(token)
            self._expiry[token] = self._clock() + self.ttl
            ttl = int(self.ttl) if float(self.ttl).is_integer() else self.ttl
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl}, ()

    def _control(self, method: str, body: bytes) -> Guarded:
        """``GET /_auth``: the counters. ``POST /_auth`` with ``{"revoke": true}``,
        ``{"client_secret": "..."}`` and/or ``{"ttl": seconds}``: change them first."""
        if method == "POST":
            try:
                document = json.loads(body or b"null")
            except ValueError:
                document = None
            if not isinstance(document, dict):
                return 400, {"error": 'expected an object like {"revoke": true}'}, ()
            if document.get("revoke"):
                self.revoke()
            with self._lock:
                if isinstance(document.get("client_secret"), str):
                    self.client_secret = document["client_secret"]
                if isinstance(document.get("ttl"), int | float):
                    self.ttl = float(document["ttl"])
        return 200, self.stats(), ()


def _basic(value: str) -> tuple[str | None, str | None]:
    """``user:password`` from a basic credential's base64; (None, None) if unreadable."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, None
    user, sep, password = text.partition(":")
    return (user, password) if sep else (None, None)
