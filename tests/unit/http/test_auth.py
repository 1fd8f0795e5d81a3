"""The token holder (``auth.Authorizer``), its sources, and 401s in the client.

Threads meet on events and on the holder's own ``waiting`` count (bounded
waits), and expiry runs on a fake clock: nothing here sleeps to synchronise.
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from resumer.errors import AuthError
from resumer.http.auth import (
    AuthorizedHTTP,
    Authorizer,
    ClientCredentials,
    Token,
    TokenCommand,
    renewal_times,
)
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.model import Task
from resumer.policies.retry import RetryPolicy, Stopped
from resumer.query.client import Client

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=1, id="A1", name="Alpha", type="core", parent_id="")
BOUND = 5.0  # seconds any wait in these tests may take at most


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], timeout: float = BOUND) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


class Tokens:
    """A token source handing out tok-1, tok-2, ...; ``gate`` (if set) holds each fetch."""

    def __init__(self, lifetime: float | None = 60.0, gate: threading.Event | None = None) -> None:
        self.lifetime = lifetime
        self.gate = gate
        self.calls = 0
        self.started = threading.Event()

    def __call__(self) -> Token:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(BOUND), "the test never released the fetch"
        return Token(f"tok-{self.calls}", self.lifetime)


# -- the holder ------------------------------------------------------------------


def test_one_fetch_serves_every_thread_that_asks_at_once() -> None:
    release = threading.Event()
    tokens = Tokens(gate=release)
    auth = Authorizer(tokens)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(auth.current().header)) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert tokens.started.wait(BOUND)
    assert wait_until(lambda: auth.waiting == 7)  # the others wait on the one fetch
    release.set()
    for thread in threads:
        thread.join(BOUND)
    assert got == ["Bearer tok-1"] * 8
    assert tokens.calls == auth.fetches == 1


def test_a_token_is_renewed_shortly_before_it_expires_on_the_clock() -> None:
    clock = Clock()
    tokens = Tokens(lifetime=100.0)
    auth = Authorizer(tokens, clock=clock)
    first = auth.current()
    clock.now += 74.9  # renewed at 75% of a 100 s lifetime
    assert auth.current() is first and tokens.calls == 1
    clock.now += 0.2
    assert auth.current().header == "Bearer tok-2"
    assert tokens.calls == 2


def test_while_one_caller_renews_a_valid_token_the_others_keep_sending_it() -> None:
    clock = Clock()
    release = threading.Event()
    tokens = Tokens(lifetime=100.0)
    auth = Authorizer(tokens, clock=clock)
    old = auth.current()
    tokens.gate, tokens.started = release, threading.Event()
    clock.now += 80.0  # due, not expired
    renewed: list[str] = []
    renewer = threading.Thread(target=lambda: renewed.append(auth.current().header))
    renewer.start()
    assert tokens.started.wait(BOUND)
    assert auth.current() is old  # no waiting: the old token is still good
    release.set()
    renewer.join(BOUND)
    assert renewed == ["Bearer tok-2"]
    assert auth.current().header == "Bearer tok-2"


def test_an_expired_token_makes_callers_wait_for_the_new_one() -> None:
    clock = Clock()
    tokens = Tokens(lifetime=10.0)
    auth = Authorizer(tokens, clock=clock)
    auth.current()
    clock.now += 10.0
    assert auth.current().header == "Bearer tok-2"


@pytest.mark.parametrize(
    ("lifetime", "renew_after"),
    [(3600.0, 3240.0), (200.0, 170.0), (60.0, 45.0), (1.0, 0.75), (None, float("inf"))],
)
def test_the_renewal_rule(lifetime: float | None, renew_after: float) -> None:
    renew_at, expires_at = renewal_times(0.0, lifetime)
    assert renew_at == pytest.approx(renew_after)
    assert expires_at == (lifetime if lifetime is not None else float("inf"))


def test_many_401s_with_the_same_token_make_one_renewal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="resumer.http.auth")
    tokens = Tokens()
    auth = Authorizer(tokens)
    refused = auth.current()
    barrier = threading.Barrier(10)
    answers: list[bool] = []

    def refuse() -> None:
        barrier.wait(BOUND)
        answers.append(auth.refused(refused))
        answers.append(auth.current().header == "Bearer tok-2")

    threads = [threading.Thread(target=refuse) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert answers == [True] * 20
    assert tokens.calls == 2
    assert auth.refused(refused) and auth.current().header == "Bearer tok-2"  # late: no effect
    renewals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert renewals == ["auth: token 1 refused: renewing it"]  # said once


def test_a_fixed_value_is_never_renewed() -> None:
    auth = Authorizer(static="Basic dTpw")
    credential = auth.current()
    assert credential.header == "Basic dTpw"
    assert not auth.refused(credential)
    assert auth.current() is credential


def test_a_failed_fetch_tells_every_caller_and_is_not_repeated() -> None:
    calls = []

    def fetch() -> Token:
        calls.append(1)
        raise AuthError("the token URL refused the client credentials")

    auth = Authorizer(fetch)
    for _ in range(3):
        with pytest.raises(AuthError, match="refused the client credentials"):
            auth.current()
    assert len(calls) == 1


def test_a_bug_in_a_token_source_stops_with_an_auth_error() -> None:
    def fetch() -> Token:
        raise KeyError("boom")

    with pytest.raises(AuthError, match="could not be obtained"):
        Authorizer(fetch).current()


def test_a_token_that_cannot_be_sent_in_a_header_is_refused() -> None:
    with pytest.raises(AuthError, match="line break"):
        Authorizer(lambda: Token("abc\r\nX-Evil: 1")).current()


def test_a_stop_ends_the_wait_for_a_token() -> None:
    release, stop = threading.Event(), threading.Event()
    tokens = Tokens(gate=release)
    auth = Authorizer(tokens, stop=stop)
    fetcher = threading.Thread(target=auth.current)
    fetcher.start()
    assert tokens.started.wait(BOUND)
    stop.set()
    with pytest.raises(Stopped):
        auth.current()
    release.set()
    fetcher.join(BOUND)


def test_every_token_is_protected_before_it_is_used() -> None:
    seen: list[str] = []
    auth = Authorizer(Tokens(), protect=seen.extend)
    assert auth.current().header == "Bearer tok-1"
    assert seen == ["tok-1"]


# -- AuthorizedHTTP: the value on every call, one renewal on a 401 ---------------------


def test_a_401_renews_once_and_sends_the_call_again() -> None:
    accepted = {"Bearer tok-2"}
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        ok = request.headers["Authorization"] in accepted
        return httpx.Response(200 if ok else 401, json={})

    tokens = Tokens()
    http = AuthorizedHTTP(httpx.Client(transport=httpx.MockTransport(handler)), Authorizer(tokens))
    assert http.request("GET", f"{BASE}/children").status_code == 200
    assert sent == ["Bearer tok-1", "Bearer tok-2"]
    accepted.clear()  # revoked: the renewed token is refused too
    assert http.request("GET", f"{BASE}/children").status_code == 401
    assert tokens.calls == 3  # one renewal per refused token, no more


# -- the token sources ---------------------------------------------------------------


def credentials(
    handler: Callable[[httpx.Request], httpx.Response],
    client_auth: str = "basic",
    attempts: int = 3,
    waits: list[float] | None = None,
) -> ClientCredentials:
    def sleep(seconds: float) -> bool:
        (waits if waits is not None else []).append(seconds)
        return False

    return ClientCredentials(
        httpx.Client(transport=httpx.MockTransport(handler)),
        f"{BASE}/token",
        "my app",
        "s3cr:et+",
        retrier=RetryPolicy(attempts, 0.01, 0.05).bind(threading.Event(), sleep),
        timeout=5.0,
        retry_on=frozenset({429, 503}),
        scope="features.read",
        client_auth=client_auth,
    )


def test_client_credentials_are_sent_by_http_basic_and_the_token_read() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "T", "expires_in": "30"})

    token = credentials(handler)()
    assert token == Token("T", 30.0)
    (request,) = seen
    assert request.method == "POST"
    form = dict(parse_qsl(request.content.decode()))
    assert form == {"grant_type": "client_credentials", "scope": "features.read"}
    basic = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == "my+app:s3cr%3Aet%2B"  # RFC 6749 2.3.1: form-encoded, then base64
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_client_credentials_can_go_in_the_form() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "T"})

    assert credentials(handler, client_auth="form")() == Token("T", None)
    form = dict(parse_qsl(seen[0].content.decode()))
    assert (form["client_id"], form["client_secret"]) == ("my app", "s3cr:et+")
    assert "Authorization" not in seen[0].headers


def test_the_token_url_is_retried_after_its_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0.02"}),
            httpx.Response(429),
            httpx.Response(200, json={"access_token": "T", "expires_in": 60}),
        ]
    )
    waits: list[float] = []
    assert credentials(lambda _: next(answers), waits=waits)() == Token("T", 60.0)
    assert waits[0] == 0.02 and len(waits) == 2


def test_a_token_url_that_keeps_failing_gives_an_auth_error() -> None:
    with pytest.raises(AuthError, match="no token from the token URL: HTTP 503"):
        credentials(lambda _: httpx.Response(503), attempts=2)()


def test_refused_client_credentials_say_why_without_the_secret() -> None:
    body = {"error": "invalid_client", "error_description": "bad secret s3cr:et+"}
    source = credentials(lambda _: httpx.Response(401, json=body))
    source._redact = lambda text: text.replace("s3cr:et+", "***")
    with pytest.raises(AuthError) as caught:
        source()
    assert "HTTP 401" in str(caught.value) and "invalid_client" in str(caught.value)
    assert "s3cr:et+" not in str(caught.value)


@pytest.mark.parametrize("body", [b"not json", b'{"token": "x"}', b'{"access_token": ""}'])
def test_an_answer_without_a_token_gives_an_auth_error(body: bytes) -> None:
    with pytest.raises(AuthError, match=r"access_token|not JSON"):
        credentials(lambda _: httpx.Response(200, content=body))()


def command(script: str) -> str:
    return f'{sys.executable} -c "{script}"'


def test_a_token_command_may_print_the_token_alone() -> None:
    assert TokenCommand(command("print('  tok-plain  ')"))() == Token("tok-plain", None)


def test_a_token_command_may_print_json_with_its_lifetime() -> None:
    script = "import json; print(json.dumps({'access_token': 'tok-j', 'expires_in': 120}))"
    assert TokenCommand(command(script))() == Token("tok-j", 120.0)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("import sys; sys.stderr.write('not logged in\\n'); sys.exit(3)", "exit status 3"),
        ("pass", "printed nothing"),
        ("print('two words')", "more than one word"),
        ("print('{broken')", "not JSON"),
    ],
)
def test_a_failing_token_command_gives_an_auth_error(script: str, message: str) -> None:
    with pytest.raises(AuthError, match=message) as caught:
        TokenCommand(command(script))()
    if "exit" in message:
        assert "not logged in" in str(caught.value)  # stderr's first line says why


def test_a_token_command_that_hangs_is_killed_at_its_timeout() -> None:
    began = time.monotonic()
    with pytest.raises(AuthError, match=r"did not finish within 0\.3s"):
        TokenCommand("sleep 30 & sleep 30", timeout=0.3)()  # a child holds the pipe too
    assert time.monotonic() - began < BOUND


# -- the client: a 401 is an AuthError, never a node's failure ---------------------------


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    auth: str = "",
    env: dict[str, str] | None = None,
) -> Client:
    text = (
        f'[source]\nurl = "{BASE}/features"\n[request]\nurl = "{BASE}/children"\n'
        f'[response]\nitems = "data.items"\n{auth}'
    )
    job = parse_job(text, "job.toml")
    return Client(bind(job, env or {}), httpx.Client(transport=httpx.MockTransport(handler)))


def test_a_401_without_auth_stops_and_says_there_is_nothing_to_renew() -> None:
    client = make_client(lambda _: httpx.Response(401, json={"error": "who are you"}))
    with pytest.raises(AuthError, match=r"HTTP 401 from GET .*no \[auth\] to renew"):
        client.query(TASK, 5.0)


def test_a_token_refused_even_renewed_stops_and_is_masked_in_the_message() -> None:
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            tokens.append(f"tok-{len(tokens) + 1}")
            return httpx.Response(200, json={"access_token": tokens[-1], "expires_in": 60})
        echoed = request.headers["Authorization"]  # a server that quotes what it refused
        return httpx.Response(401, json={"error": f"refused {echoed}"})

    auth = (
        f'[auth]\ntype = "oauth2"\ntoken_url = "{BASE}/token"\n'
        'client_id = "app"\nclient_secret = "${SECRET}"\n'
    )
    client = make_client(handler, auth, {"SECRET": "hush"})
    with pytest.raises(AuthError, match="oauth2 token, even renewed") as caught:
        client.query(TASK, 5.0)
    assert len(tokens) == 2  # fetched, renewed once after the 401
    assert not any(token in str(caught.value) for token in tokens)
    assert "hush" not in client.redactor.redact(f"x hush {tokens[0]} {tokens[1]}")


def test_basic_credentials_go_on_every_call() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"data": {"items": []}})

    auth = '[auth]\ntype = "basic"\nusername = "ann"\npassword = "${PW}"\n'
    client = make_client(handler, auth, {"PW": "pa:ss"})
    assert client.query(TASK, 5.0) == []
    assert seen == ["Basic " + base64.b64encode(b"ann:pa:ss").decode()]
    assert client.redactor.redact(seen[0]) == "Basic ***"
