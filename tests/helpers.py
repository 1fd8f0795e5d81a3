"""Shared test helpers: job files, the fake API, and running the real CLI."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from resumer.fake.server import FakeAPI
from resumer.fake.tree import FakeTree
from resumer.http.pool import ClientPool, Pool

ENGINES = ("curl", "httpx")  # [request] engine: the tests about HTTP behaviour run on both

Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """``server`` answering on a thread of its own inside the block; shut down after it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def job_text(url: str, *, max_depth: int = 4, extra: str = "", **sections: str) -> str:
    """A job file for the fake API at ``url``; ``sections`` replace whole sections by name."""
    parts = {
        "source": f'[source]\nurl = "{url}/features"\n',
        "request": f'[request]\nurl = "{url}/children"\ntimeout = 10.0\n',
        "response": '[response]\nitems = "data.items"\n',
        "crawl": f"[crawl]\nmax_depth = {max_depth}\nhttp_concurrency = 8\ngrace = 5.0\n",
        "levels": "[levels.1]\nworkers = 2\n[levels.2]\nworkers = 3\n[levels.3]\nworkers = 4\n",
    }
    if max_depth != 4:
        parts["levels"] = ""
    parts.update(sections)
    return "\n".join(parts.values()) + extra


def write_job(folder: Path, url: str, name: str = "job.toml", **kwargs: Any) -> Path:
    path = folder / name
    path.write_text(job_text(url, **kwargs), encoding="utf-8")
    return path


def write_request_job(folder: Path, url: str, extra: str, *, max_depth: int) -> Path:
    """A job file whose ``[request]`` table ends with ``extra`` (keys, or a sub-table)."""
    request = f'[request]\nurl = "{url}/children"\ntimeout = 10.0\n{extra}'
    path = folder / "job.toml"
    path.write_text(job_text(url, max_depth=max_depth, request=request), encoding="utf-8")
    return path


def use_engine(job: Path, engine: str) -> Path:
    """The job file at ``job``, rewritten to make its calls on ``engine``."""
    text = job.read_text(encoding="utf-8")
    assert "[request]\n" in text, "a job file with a [request] table"
    job.write_text(text.replace("[request]\n", f'[request]\nengine = "{engine}"\n', 1), "utf-8")
    return job


def pool_of(engine: str, *, timeout: float) -> Pool:
    """A pool of ``engine``, as a run makes it (``pool.pool_for``)."""
    if engine == "curl":
        from resumer.http.curl import CurlPool

        return CurlPool(timeout=timeout)
    return ClientPool(timeout=timeout)


def crawl_in_process(job: Path) -> Any:
    """Start ``job`` in-process (checkpoint ``r.db`` beside it); expect it complete and
    return its export."""
    from resumer import api

    db = job.parent / "r.db"
    assert api.run(job, db).exit_status == 0
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


@contextmanager
def fake_api(tree: FakeTree, **kwargs: Any) -> Iterator[FakeAPI]:
    with FakeAPI(tree, **kwargs) as api:
        yield api


def roots_from_csv(job: Path, tree: FakeTree) -> None:
    """Make ``job`` read its roots from ``roots.csv`` (written beside it) instead of its
    source URL: its queries, not the source call, meet the server first."""
    write_csv_roots(job.parent, tree)
    text = job.read_text(encoding="utf-8")
    changed, count = re.subn(r'(?m)^\[source\]\nurl = ".*"$', '[source]\nfile = "roots.csv"', text)
    assert count == 1, f"no [source] url in {job}"
    job.write_text(changed, encoding="utf-8")


def write_csv_roots(folder: Path, tree: FakeTree, count: int | None = None) -> Any:
    """Write the tree's roots to ``roots.csv``; return the export expected from that source.

    A root read from CSV has its row (all strings) as its payload.
    """
    roots = tree.root_items()[:count]
    lines = ["id,name,type"] + [f"{r['id']},{r['name']},{r['type']}" for r in roots]
    (folder / "roots.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = tree.expected_export(4)[: len(roots)]
    for tree_root, row in zip(expected, roots, strict=True):
        tree_root["payload"] = {k: str(row[k]) for k in ("id", "name", "type")}
    return expected


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESUMER_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def resumer(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI to completion."""
    return subprocess.run(
        [sys.executable, "-m", "resumer", *map(str, args)],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real CLI in the background (for kills and signals)."""
    return subprocess.Popen(
        [sys.executable, "-m", "resumer", *map(str, args)],
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def export_json(db: Path, cwd: Path, *extra: str) -> Any:
    done = resumer("export", "--db", db, *extra, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# The rules a user writes for the {"code", "msg", "data"} envelope (README: "When the API
# answers 200 with an error inside"), as the fake API's envelope mode answers.
ENVELOPE_RULES = """[response]
items = "data.list"
message = "msg"

[[response.rule]]
status = [404]
then = "empty"

[[response.rule]]
field = "code"
in = [500, 503]
then = "retry"

[[response.rule]]
field = "code"
in = [429]
then = "throttle"
wait = "data.retryAfter"

[[response.rule]]
field = "code"
not_in = [0]
then = "fail"

[[response.rule]]
field = "data"
missing = true
then = "empty"
"""
