"""Servers that drip their answer, or never give one, cannot hold a call past its timeout.

A tiny HTTP/1.1 server on 127.0.0.1 in a thread: ``/features`` answers at once,
``/redirect`` sends to ``/children``, and ``/children`` answers as the test asks:
a body of ``BODY`` bytes dripped one every ``DRIP`` seconds (30 s a call without
a deadline), or no answer at all.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from resumer import api
from resumer.http.pool import Pool
from resumer.results import Outcome
from tests.helpers import pool_of, serving, use_engine, write_job

DRIP = 0.3  # seconds between two bytes of a dripped answer
BODY = 100  # bytes of a dripped answer
ROOTS = 3
SLACK = 1.5  # seconds past a deadline a test tolerates: a loaded 2-core machine is slow
FEATURES = json.dumps(
    {"data": {"items": [{"id": f"R{n}", "name": f"Root {n}", "type": "t"} for n in range(ROOTS)]}}
).encode()


class DripServer(socketserver.ThreadingTCPServer):
    """Answers ``/features`` at once and ``/children`` by ``mode``: "drip" (the head at
    once, then the body a byte at a time), "drip-head" (the head too) or "silent"."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.stop = threading.Event()
        self.calls: Counter[str] = Counter()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up mid-answer is what these tests do


class _Handler(socketserver.StreamRequestHandler):
    server: DripServer

    def handle(self) -> None:
        while not self.server.stop.is_set():
            line = self.rfile.readline()
            if not line:
                return  # the client closed the connection
            path = line.split()[1].decode().split("?")[0]
            length = 0
            while (header := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.rfile.read(length)
            self.server.calls[path] += 1
            if path == "/features":
                self.wfile.write(_head(len(FEATURES)) + FEATURES)
            elif path == "/redirect":
                self.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /children\r\n")
                self.wfile.write(b"Content-Length: 0\r\n\r\n")
            elif not self._children():
                return

    def _children(self) -> bool:
        """Answer /children; False when the connection is done with."""
        body = json.dumps({"data": {"items": []}}).encode().ljust(BODY)
        head, mode, stop = _head(len(body)), self.server.mode, self.server.stop
        if mode == "silent":
            stop.wait()
            return False
        if mode == "drip":
            self.wfile.write(head)
        for byte in body if mode == "drip" else head + body:
            if stop.wait(DRIP):  # the server's pace, not a synchronisation
                return False
            self.wfile.write(bytes([byte]))
        return True


def _head(length: int) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@contextmanager
def drip_server(mode: str) -> Iterator[DripServer]:
    with serving(DripServer(mode)) as server:
        try:
            yield server
        finally:
            server.stop.set()  # the drips end first: a handler mid-drip holds the shutdown


def timed_call(pool: Pool, url: str) -> tuple[BaseException | None, float]:
    began = time.monotonic()
    try:
        pool.request("GET", url)
    except BaseException as exc:
        return exc, time.monotonic() - began
    return None, time.monotonic() - began


@pytest.mark.parametrize("mode", ["drip", "drip-head"])
def test_a_dripped_answer_ends_the_call_at_its_timeout(mode: str, engine: str) -> None:
    with drip_server(mode) as server, pool_of(engine, timeout=1.0) as pool:
        error, took = timed_call(pool, f"{server.url}/children?id=R0")
    assert isinstance(error, httpx.TimeoutException)
    assert "no complete answer within 1.0s" in str(error)
    assert took < 1.0 + SLACK


def test_a_silent_server_ends_the_call_at_its_timeout(engine: str) -> None:
    with drip_server("silent") as server, pool_of(engine, timeout=1.0) as pool:
        error, took = timed_call(pool, f"{server.url}/children?id=R0")
    assert isinstance(error, httpx.TimeoutException)
    assert took < 1.0 + SLACK


def test_a_server_that_accepts_and_never_reads_ends_the_call_at_its_timeout(engine: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody reads
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/children"
    try:
        with pool_of(engine, timeout=1.0) as pool:
            error, took = timed_call(pool, url)
    finally:
        listener.close()
    assert isinstance(error, httpx.TimeoutException)
    assert took < 1.0 + SLACK


def test_a_redirect_to_a_dripping_endpoint_ends_within_the_same_timeout(engine: str) -> None:
    with drip_server("drip") as server, pool_of(engine, timeout=1.0) as pool:
        error, took = timed_call(pool, f"{server.url}/redirect")
        calls = dict(server.calls)
    assert isinstance(error, httpx.TimeoutException)
    assert took < 1.0 + SLACK
    assert calls == {"/redirect": 1, "/children": 1}


def crawl(job: Path, db: Path, bound: float) -> tuple[Outcome | None, float]:
    """``api.run`` in a thread, waited for at most ``bound`` seconds."""
    done: list[Outcome] = []
    began = time.monotonic()
    thread = threading.Thread(target=lambda: done.append(api.run(job, db)), daemon=True)
    thread.start()
    thread.join(bound)
    return (done[0] if done else None), time.monotonic() - began


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_a_crawl_against_an_api_that_never_finishes_its_answers_fails_in_time(
    tmp_path: Path, mode: str, engine: str
) -> None:
    attempts, timeout = 2, 1.0
    worst = attempts * timeout * ROOTS  # every attempt of every node one after the other
    with drip_server(mode) as server:
        job = write_job(
            tmp_path,
            server.url,
            max_depth=2,  # the roots are queried, their children are leaves
            request=f'[request]\nurl = "{server.url}/children"\ntimeout = {timeout}\n',
            extra=(
                f"[retry]\nattempts = {attempts}\ninitial = 0.01\n"
                "[breaker]\nfailure_threshold = 100\n"  # every attempt reaches the server
            ),
        )
        outcome, took = crawl(use_engine(job, engine), tmp_path / "r.db", bound=worst + 60)
        calls = server.calls["/children"]
    assert outcome is not None, "the crawl hung"
    assert (outcome.exit_status, outcome.failed) == (1, ROOTS)
    assert took < worst + SLACK  # without deadlines, each drip alone takes 30 s
    assert calls == attempts * ROOTS
    failed = list(api.failed(tmp_path / "r.db"))
    assert [(f.level, f.attempts) for f in failed] == [(1, attempts)] * ROOTS
    assert all("Timeout" in f.error for f in failed), [f.error for f in failed]
