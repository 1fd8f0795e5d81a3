"""Ctrl-C and SIGTERM: once drains and exits 130 with the resume command; twice quits at once."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from resumer.fake.tree import FakeTree
from tests.helpers import (
    export_json,
    fake_api,
    resumer,
    spawn,
    use_engine,
    write_csv_roots,
    write_job,
)

TREE = FakeTree(seed=5, roots=6, fanout=(5, 4, 3))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_one_signal_drains_checkpoints_and_exits_130(tmp_path: Path, signum: int) -> None:
    with fake_api(TREE, latency=0.02) as server:
        job = write_job(tmp_path, server.url)
        process = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        assert server.stats.wait_for(20, timeout=60)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "resumer resume --db r.db" in stderr
        with sqlite3.connect(tmp_path / "r.db") as db:
            running = db.execute("SELECT count(*) FROM nodes WHERE status='running'").fetchone()
            pending = db.execute("SELECT count(*) FROM nodes WHERE status='pending'").fetchone()
        assert running == (0,)  # claimed-but-unsent nodes went back to pending
        assert pending[0] > 0  # it really stopped early
        status = resumer("status", "--db", "r.db", "--json", cwd=tmp_path)
        assert '"state": "stopped"' in status.stdout
        done = resumer("resume", "--db", "r.db", cwd=tmp_path)
        calls = server.stats.snapshot()
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == TREE.expected_export(4)
    assert set(calls.values()) == {1}  # in-flight queries finished and were stored once


def test_a_second_ctrl_c_quits_without_waiting_for_queries_in_flight(
    tmp_path: Path, engine: str
) -> None:
    expected = write_csv_roots(tmp_path, TREE)
    crawl = "[crawl]\nmax_depth = 4\nhttp_concurrency = 8\ngrace = 600\n"
    with fake_api(TREE, latency=600) as server:  # answers would take 10 minutes
        source = '[source]\nfile = "roots.csv"\n'
        job = use_engine(write_job(tmp_path, server.url, source=source, crawl=crawl), engine)
        process = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        assert server.stats.wait_for(2, timeout=60)
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        for line in process.stderr:  # synchronise on the first signal being handled
            if "stopping" in line:
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)  # far less than the answers' 600 s
        assert process.returncode == 130
        assert "quitting at once" in stderr
        server.latency = 0
        done = resumer("resume", "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == expected
