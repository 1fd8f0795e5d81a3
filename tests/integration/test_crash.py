"""kill -9 at named and random moments, then resume: nothing lost, nothing stored twice.

After every kill the database passes SQLite's integrity check and the
checkpoint's own invariants; the final export equals the fake API's tree, and
the queries made again are at most the nodes the killed run had claimed
(``running`` rows): what was in flight or claimed but unfinished.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path
from subprocess import Popen

import pytest

from resumer._crashpoints import ENV_VAR
from resumer.fake.stats import Stats
from resumer.fake.tree import FakeTree
from tests.helpers import export_json, fake_api, kill9, resumer, spawn, write_job

TREE = FakeTree(seed=21, roots=6, fanout=(5, 4, 3))
BIG_TREE = FakeTree(seed=22, roots=8, fanout=(6, 5, 4))  # 200+ queries: room for 4 kills


def check_checkpoint(db: Path) -> int:
    """Integrity and invariants of a killed run's checkpoint; returns its ``running`` rows."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        wrong_counters = conn.execute(
            "SELECT count(*) FROM nodes AS n WHERE n.status = 'waiting' AND n.open_children !="
            " (SELECT count(*) FROM nodes AS c WHERE c.parent_id = n.id AND c.status != 'complete')"
        ).fetchone()[0]
        assert wrong_counters == 0
        complete_over_open = conn.execute(
            "SELECT count(*) FROM nodes AS n WHERE n.status = 'complete' AND EXISTS"
            " (SELECT 1 FROM nodes AS c WHERE c.parent_id = n.id AND c.status != 'complete')"
        ).fetchone()[0]
        assert complete_over_open == 0
        kept = conn.execute("SELECT level, status, n FROM counts WHERE n != 0 ORDER BY 1, 2")
        counted = conn.execute(
            "SELECT level, status, count(*) FROM nodes WHERE level > 0 GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert kept.fetchall() == counted.fetchall()  # the kept counts moved with every commit
        return int(
            conn.execute("SELECT count(*) FROM nodes WHERE status = 'running'").fetchone()[0]
        )


def wait_for_calls_or_exit(stats: Stats, target: int, process: Popen[str]) -> bool:
    """Wait until ``target`` requests arrived (True) or the process ended (False)."""
    for _ in range(240):
        if stats.wait_for(target, timeout=0.25):
            return True
        if process.poll() is not None:
            return False
    raise AssertionError("the crawl neither progressed nor ended")


def repeats(calls: Counter[str]) -> int:
    return sum(n - 1 for n in calls.values())


@pytest.mark.parametrize(
    "point", ["after_http:1", "after_http:37", "after_save:2", "after_save:6", "after_claim:3"]
)
def test_kill_at_a_named_moment_then_resume(tmp_path: Path, point: str) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        killed = resumer("start", job, "--db", "r.db", cwd=tmp_path, env={ENV_VAR: point})
        assert killed.returncode == -9, killed.stderr
        claimed = check_checkpoint(tmp_path / "r.db")
        done = resumer("resume", "--db", "r.db", cwd=tmp_path)
        calls = server.stats.snapshot()
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == TREE.expected_export(4)
    assert set(calls) == {item["id"] for level, item in TREE.walk(3)}
    assert repeats(calls) <= claimed


def test_kill_at_random_moments_then_resume_each_time(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    bound = 0
    kills = 0
    with fake_api(BIG_TREE, latency=0.005) as server:
        job = write_job(tmp_path, server.url)
        process = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        for _ in range(4):
            target = server.stats.received + rng.randint(5, 40)
            reached = wait_for_calls_or_exit(server.stats, target, process)
            kill9(process)
            assert reached, "the run ended before it could be killed"
            kills += 1
            bound += check_checkpoint(tmp_path / "r.db") + 1  # + the source, if it was unread
            process = spawn("resume", "--db", "r.db", cwd=tmp_path)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        calls = server.stats.snapshot()
    assert kills == 4
    assert export_json(tmp_path / "r.db", tmp_path) == BIG_TREE.expected_export(4)
    assert set(calls) == {item["id"] for level, item in BIG_TREE.walk(3)}
    assert repeats(calls) <= bound


WIDE = FakeTree(seed=23, roots=3, fanout=(3000,), even=True)  # pages of 3,000 children
# One page of 70,000 children, about 5 MB: past BIG_BODY, its items are read from its bytes
STREAMED = FakeTree(seed=29, roots=1, fanout=(70_000,), even=True)


@pytest.mark.parametrize("tree", [WIDE, STREAMED], ids=["pages of 3,000", "one streamed page"])
def test_kill_in_the_middle_of_storing_a_big_page_loses_and_repeats_nothing(
    tree: FakeTree, tmp_path: Path
) -> None:
    """A page of 3,000 children is inserted in a dozen statements, one transaction: a kill
    after the fifth leaves none of them, and resume stores each child once. The same for
    a page so big its items are mapped again from its bytes as they are stored."""
    with fake_api(tree) as server:
        job = write_job(tmp_path, server.url, max_depth=2)
        env = {ENV_VAR: "mid_insert:5"}
        killed = resumer("start", job, "--db", "r.db", cwd=tmp_path, env=env)
        assert killed.returncode == -9, killed.stderr
        claimed = check_checkpoint(tmp_path / "r.db")
        with sqlite3.connect(tmp_path / "r.db") as db:
            assert db.execute("SELECT count(*) FROM nodes WHERE level = 2").fetchone() == (0,)
        done = resumer("resume", "--db", "r.db", cwd=tmp_path)
        calls = server.stats.snapshot()
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == tree.expected_export(2)
    assert repeats(calls) <= claimed
    with sqlite3.connect(tmp_path / "r.db") as db:
        count = db.execute("SELECT count(*) FROM nodes WHERE level = 2").fetchone()[0]
    assert count == tree.roots * tree.fanout[0]
