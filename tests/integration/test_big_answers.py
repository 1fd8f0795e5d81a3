"""Big answers: ``request.max_body`` caps the body read, on both engines, whether the
answer announces its length, comes chunked, or runs until the connection closes. The
query fails for good with one line naming the sizes and the key; the other nodes are
not affected; a level's own ``max_body`` lets its big answers through.

The server is a small one of the test's own (``http.server``): the fake API sends
every body with a Content-Length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from resumer import api
from tests import helpers

SMALL = json.dumps({"items": [{"id": "A.1", "name": "a", "type": "t"}]}).encode()
BIG_ITEMS = [{"id": f"B.{n}", "name": "b" * 40, "type": "t"} for n in range(200)]
BIG = json.dumps({"items": BIG_ITEMS}).encode()  # about 11 kB
ROOTS = json.dumps({"items": [{"id": "A", "name": "a", "type": "t"}, {"id": "B"}]}).encode()


class Handler(BaseHTTPRequestHandler):
    """/features: two roots; /children?id=A: a small answer; id=B: a big one, sent as
    the server's ``style`` says: "length", "chunked" or "close"."""

    protocol_version = "HTTP/1.1"
    style = "length"
    big = BIG

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/features":
            self._whole(ROOTS)
        elif parse_qs(parts.query).get("id") == ["B"]:
            self._big()
        else:
            self._whole(SMALL)

    def _whole(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _big(self) -> None:
        if self.style == "length":
            self._whole(self.big)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.style == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for start in range(0, len(self.big), 1000):
            chunk = self.big[start : start + 1000]
            try:
                if self.style == "chunked":
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
            except OSError:
                return  # the client hung up at its cap
        if self.style == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(style: str, big: bytes = BIG) -> Iterator[str]:
    handler = type("Styled", (Handler,), {"style": style, "big": big})
    with helpers.serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def crawl(folder: Path, url: str, engine: str, extra: str = "") -> tuple[int, dict[str, str]]:
    """A crawl to level 2 (roots A and B); its exit status and the failed nodes' errors."""
    job = folder / "job.toml"
    job.write_text(
        f'[source]\nurl = "{url}/features"\n'
        f'[request]\nurl = "{url}/children"\nengine = "{engine}"\nmax_body = "2KiB"\n'
        '[response]\nitems = "items"\n[crawl]\nmax_depth = 2\n' + extra,
        encoding="utf-8",
    )
    outcome = api.run(job, folder / "r.db")
    return outcome.exit_status, {node.id: node.error for node in api.failed(folder / "r.db")}


@pytest.mark.parametrize("style", ["length", "chunked", "close"])
def test_an_answer_past_max_body_fails_its_query_and_nothing_else(
    engine: str, style: str, tmp_path: Path
) -> None:
    with serving(style) as url:
        status, failed = crawl(tmp_path, url, engine)
    assert status == 1
    assert list(failed) == ["B"]  # A's answer, small, is stored
    error = failed["B"]
    assert error.startswith("answer larger than request.max_body (2 KiB): ")
    if style == "length":
        assert f"{len(BIG) / 1000:.3g} kB announced" in error
    else:
        assert "more than 2 KiB sent" in error
    assert "/children?id=B" in error
    exported = list(api.export(tmp_path / "r.db", partial=True))
    assert [(n.id, n.status) for n in exported] == [
        ("A", "complete"),
        ("A.1", "complete"),
        ("B", "failed"),
    ]


def test_a_level_of_its_own_max_body_reads_its_big_answers(engine: str, tmp_path: Path) -> None:
    with serving("chunked") as url:
        status, failed = crawl(tmp_path, url, engine, '[levels.1]\nmax_body = "64KiB"\n')
    assert (status, failed) == (0, {})
    children = [n.id for n in api.export(tmp_path / "r.db", level=2)]
    assert children == ["A.1", *(item["id"] for item in BIG_ITEMS)]


def test_a_level_cap_below_the_others_names_its_own_key(engine: str, tmp_path: Path) -> None:
    with serving("length") as url:
        status, failed = crawl(
            tmp_path, url, engine, "[crawl]\n[levels.1]\nmax_body = 1000\n".replace("[crawl]\n", "")
        )
    assert status == 1
    assert failed["B"].startswith("answer larger than levels.1.max_body (1 kB): ")


@pytest.mark.parametrize("style", ["length", "chunked"])
def test_a_pool_keeps_no_copy_of_an_answer_it_gave(engine: str, style: str) -> None:
    """Once the response is let go, the body is gone: a handle that kept its last body (a
    curl handle keeps its write callback, and whatever that holds, until its next call)
    doubled the memory of a big answer, and held a capped one's first 256 MiB."""
    import gc
    import tracemalloc

    from tests.helpers import pool_of

    huge = json.dumps({"items": BIG_ITEMS * 50}).encode()  # about 0.6 MB
    with serving(style, huge) as url, pool_of(engine, timeout=5.0) as http:
        http.request("GET", f"{url}/children?id=A").read()  # the connection, made
        gc.collect()
        tracemalloc.start()
        try:
            response = http.request("GET", f"{url}/children?id=B")
            response.read()
            assert len(response.content) == len(huge)
            del response
            gc.collect()
            kept, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert kept < len(huge) // 2


@pytest.mark.parametrize(
    "rules", ["", '[[response.rule]]\nfield = "code"\nin = [500]\nthen = "retry"\n']
)
def test_a_big_answer_s_items_are_read_from_its_text_and_stored_the_same(
    engine: str, rules: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past BIG_BODY (made small here), the items stay in the answer's bytes: mapped to
    check them, mapped again as they are stored; the tree is the same, and a rule that
    reads the envelope still reads it."""
    from resumer.query import client, streamed

    monkeypatch.setattr(client, "BIG_BODY", 1000)
    skeletons: list[str] = []

    def noted(content: bytes, path: str, decode: Any) -> Any:
        skeletons.append(path)
        return streamed.skeleton(content, path, decode)

    monkeypatch.setattr("resumer.query.answers.skeleton", noted)
    with serving("chunked") as url:
        status, failed = crawl(tmp_path, url, engine, '[levels.1]\nmax_body = "64KiB"\n' + rules)
    assert (status, failed) == (0, {})
    assert skeletons == ["items"]  # B's answer only: A's is under the size
    stored = list(api.export(tmp_path / "r.db", level=2))
    assert [n.id for n in stored] == ["A.1", *(item["id"] for item in BIG_ITEMS)]
    assert [n.payload for n in stored[1:]] == BIG_ITEMS


def test_a_big_answer_that_does_not_map_fails_showing_its_own_start(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its items stayed in its bytes: the message shows the body's start, not the
    document around them (where they look like an empty list)."""
    from resumer.query import client

    monkeypatch.setattr(client, "BIG_BODY", 1000)
    broken = json.dumps({"items": [*BIG_ITEMS, {"name": "no id"}]}).encode()
    with serving("length", broken) as url:
        status, failed = crawl(tmp_path, url, engine, '[levels.1]\nmax_body = "64KiB"\n')
    assert status == 1 and list(failed) == ["B"]
    assert "item 200 has no usable id field 'id'" in failed["B"]
    assert 'body: {"items": [{"id": "B.0", "name": "bbbb' in failed["B"]
