"""The watchdog that ends HTTP calls at their deadline, and the pool's use of it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import respx

from resumer.http.deadline import NEVER, Watch, Watchdog
from resumer.http.pool import ClientPool

BASE = "http://127.0.0.1:9"
SLACK = 1.5  # seconds past a deadline a test tolerates: a loaded 2-core machine is slow


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def is_shut(sock: socket.socket) -> bool:
    """True if reading ``sock`` returns at once with the end of the stream."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False  # nothing to read yet: still open
    finally:
        sock.setblocking(True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_watchdog_shuts_an_overdue_socket_and_only_at_its_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    dog, watch = Watchdog(clock=FakeClock(), thread=False), Watch()
    watch.attach(ours)
    dog.start(watch, 110.0)
    assert dog.step(109.9) == 110.0  # not yet: the next look is at the deadline
    assert not is_shut(ours)
    assert dog.step(110.0) == NEVER
    assert is_shut(ours)
    assert dog.stop(watch) is True  # the call learns it was cut short
    assert dog.watching == 0


def test_a_call_that_ends_in_time_leaves_nothing_watched(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    dog, watch = Watchdog(clock=FakeClock(), thread=False), Watch()
    watch.attach(ours)
    dog.start(watch, 110.0)
    assert dog.watching == 1
    assert dog.stop(watch) is False
    assert dog.watching == 0
    assert dog.step(1e9) == NEVER  # long past the old deadline: the connection is left alone
    assert not is_shut(ours)


def test_a_socket_made_after_the_deadline_is_shut_as_soon_as_it_is_noted(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    dog, watch = Watchdog(clock=FakeClock(), thread=False), Watch()
    dog.start(watch, 110.0)
    dog.step(111.0)  # still connecting: no socket yet
    watch.attach(ours)
    assert is_shut(ours)
    assert dog.stop(watch) is True


def test_the_next_call_on_a_connection_starts_with_a_clean_watch(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    dog, watch = Watchdog(clock=FakeClock(), thread=False), Watch()
    dog.start(watch, 110.0)
    dog.step(111.0)
    dog.stop(watch)
    dog.start(watch, 120.0)
    watch.attach(ours)
    assert not is_shut(ours)
    assert dog.stop(watch) is False


def blocked_read(sock: socket.socket) -> tuple[threading.Thread, list[object]]:
    """A thread blocked reading ``sock`` (no timeout of its own); what it read, and when."""
    seen: list[object] = []

    def read() -> None:
        try:
            seen.append(sock.recv(10))
        except OSError as exc:
            seen.append(exc)
        seen.append(time.monotonic())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, seen


def test_a_read_blocked_in_another_thread_returns_at_the_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    dog, watch = Watchdog(), Watch()
    watch.attach(ours)
    began = time.monotonic()
    dog.start(watch, began + 0.2)
    thread, seen = blocked_read(ours)
    thread.join(0.2 + SLACK + 5)
    dog.close()
    assert not thread.is_alive()
    assert seen[0] == b""
    assert isinstance(seen[1], float) and seen[1] - began < 0.2 + SLACK
    assert dog.stop(watch) is True


def test_an_earlier_deadline_wakes_a_watchdog_sleeping_until_a_later_one(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    other_ours, other_theirs = socket.socketpair()
    dog, late, early = Watchdog(), Watch(), Watch()
    late.attach(other_ours)
    early.attach(ours)
    began = time.monotonic()
    dog.start(late, began + 300.0)  # the thread now sleeps until then
    dog.start(early, began + 0.2)
    thread, seen = blocked_read(ours)
    thread.join(0.2 + SLACK + 5)
    try:
        assert not thread.is_alive()
        assert isinstance(seen[1], float) and seen[1] - began < 0.2 + SLACK
        assert not is_shut(other_ours)
        assert (dog.stop(early), dog.stop(late)) == (True, False)
    finally:
        dog.close()
        other_ours.close()
        other_theirs.close()


def test_the_pool_leaves_nothing_watched_after_calls_that_end_in_time() -> None:
    dog = Watchdog(clock=FakeClock(), thread=False)
    http = ClientPool(timeout=5.0, watchdog=dog)
    with respx.mock:
        respx.get(f"{BASE}/ok").respond(json=[])
        respx.get(f"{BASE}/broken").mock(side_effect=httpx.ConnectError("refused"))
        assert http.request("GET", f"{BASE}/ok").status_code == 200
        with pytest.raises(httpx.ConnectError):
            http.request("GET", f"{BASE}/broken")
    http.close()
    assert dog.watching == 0


def test_redirects_count_within_the_same_deadline() -> None:
    clock = FakeClock()
    http = ClientPool(timeout=5.0, watchdog=Watchdog(clock=clock, thread=False))

    def slow_redirect(request: httpx.Request) -> httpx.Response:
        clock.now += 6.0  # the first hop took longer than the whole call may
        return httpx.Response(302, headers={"Location": f"{BASE}/b"})

    with respx.mock:
        respx.get(f"{BASE}/a").mock(side_effect=slow_redirect)
        second = respx.get(f"{BASE}/b").respond(json=[])
        with pytest.raises(httpx.ReadTimeout, match=r"no complete answer within 5.0s"):
            http.request("GET", f"{BASE}/a")
    http.close()
    assert not second.called


def test_redirects_are_followed_with_the_time_left_for_each_hop() -> None:
    clock = FakeClock()
    http = ClientPool(timeout=5.0, watchdog=Watchdog(clock=clock, thread=False))
    timeouts: list[object] = []

    def hop(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        clock.now += 1.0
        if request.url.path == "/c":
            return httpx.Response(200, json=[])
        return httpx.Response(307, headers={"Location": "/c" if request.url.path == "/b" else "/b"})

    with respx.mock:
        respx.get(url__startswith=BASE).mock(side_effect=hop)
        response = http.request("GET", f"{BASE}/a")
    http.close()
    assert response.status_code == 200
    assert [str(r.url) for r in response.history] == [f"{BASE}/a", f"{BASE}/b"]
    assert timeouts == [5.0, 4.0, 3.0]


def test_a_pool_that_follows_no_redirects_returns_the_redirect() -> None:
    http = ClientPool(timeout=5.0, follow_redirects=False)
    with respx.mock:
        respx.get(f"{BASE}/a").respond(302, headers={"Location": f"{BASE}/b"})
        response = http.request("GET", f"{BASE}/a")
    http.close()
    assert response.status_code == 302
    assert response.next_request is not None


def test_too_many_redirects_is_an_http_error() -> None:
    http = ClientPool(timeout=5.0)
    with respx.mock:
        respx.get(f"{BASE}/loop").respond(302, headers={"Location": f"{BASE}/loop"})
        with pytest.raises(httpx.TooManyRedirects):
            http.request("GET", f"{BASE}/loop")
    http.close()
