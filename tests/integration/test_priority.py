"""Priorities: weighted subtrees are claimed first and finish first, across resumes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from resumer import api
from resumer._crashpoints import ENV_VAR
from resumer.fake.tree import FakeTree
from resumer.job.loader import parse_job
from tests.helpers import fake_api, resumer, write_job

TREE = FakeTree(seed=13, roots=10, fanout=(3, 3, 2), even=True)
PRIORITY = '[priority]\nroots = { "F7" = 100, "F3" = 50 }\ntypes = { nothing = 1 }\n'
ONE_AT_A_TIME = "[levels.1]\nworkers = 1\n[levels.2]\nworkers = 1\n[levels.3]\nworkers = 1\n"
CRAWL = "[crawl]\nmax_depth = 4\nhttp_concurrency = 2\n"


def completion_order(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT item_id FROM nodes WHERE level = 1 ORDER BY completed_at, id"
        ).fetchall()
    return [row[0] for row in rows]


def test_high_priority_roots_complete_before_the_others(tmp_path: Path) -> None:
    with fake_api(TREE, latency=0.003) as server:
        job = write_job(tmp_path, server.url, crawl=CRAWL, levels=ONE_AT_A_TIME, extra=PRIORITY)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    order = completion_order(tmp_path / "r.db")
    assert order[:2] == ["F7", "F3"]
    with sqlite3.connect(tmp_path / "r.db") as conn:
        inherited = conn.execute(
            "SELECT DISTINCT priority FROM nodes WHERE item_id LIKE 'F7.%'"
        ).fetchall()
    assert inherited == [(100,)]  # the whole subtree carries its root's weight


def test_without_priorities_the_source_order_rules(tmp_path: Path) -> None:
    with fake_api(TREE, latency=0.003) as server:
        job = write_job(tmp_path, server.url, crawl=CRAWL, levels=ONE_AT_A_TIME)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    assert completion_order(tmp_path / "r.db")[0] == "F1"


def test_type_and_root_weights_add_up_down_a_subtree() -> None:
    job = parse_job(
        '[source]\nfile = "r.csv"\n[request]\nurl = "http://x/c"\n'
        '[priority]\norder = "breadth-first"\ntypes = { core = 10, misc = -5 }\n'
        'roots = { "A1" = 100 }\n',
        "job.toml",
    )
    weigh = job.priority.of
    assert job.priority.order == "breadth-first"
    assert weigh(1, "A1", "core", 0) == 110
    assert weigh(2, "A1.1", "misc", 110) == 105
    assert weigh(1, "B1", "other", 0) == 0


def test_priorities_survive_a_crash_and_resume(tmp_path: Path) -> None:
    with fake_api(TREE, latency=0.003) as server:
        job = write_job(tmp_path, server.url, crawl=CRAWL, levels=ONE_AT_A_TIME, extra=PRIORITY)
        killed = resumer("start", job, "--db", "r.db", cwd=tmp_path, env={ENV_VAR: "after_save:3"})
        assert killed.returncode == -9
        assert resumer("resume", "--db", "r.db", cwd=tmp_path).returncode == 0
    assert completion_order(tmp_path / "r.db")[:2] == ["F7", "F3"]
