"""Backups and integrity checks: never lose the checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from resumer import api
from resumer.checkpoint.backups import backups_of
from resumer.fake.tree import FakeTree
from tests.helpers import export_json, fake_api, kill9, resumer, spawn, write_job

TREE = FakeTree(seed=12, roots=6, fanout=(5, 4, 3))


def test_a_backup_taken_mid_run_checks_out_and_resumes_to_the_whole_tree(
    tmp_path: Path,
) -> None:
    with fake_api(TREE, latency=0.01) as server:
        job = write_job(tmp_path, server.url)
        run = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        assert server.stats.wait_for(40, timeout=60)
        copy = resumer("backup", "--db", "r.db", "b.db", cwd=tmp_path)
        kill9(run)
        checked = resumer("check", "--db", "b.db", cwd=tmp_path)
        resumed = resumer("resume", "--db", "b.db", cwd=tmp_path)
    assert copy.returncode == 0, copy.stderr
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout
    assert resumed.returncode == 0, resumed.stderr
    assert export_json(tmp_path / "b.db", tmp_path) == TREE.expected_export(4)


def test_check_names_kept_counts_that_differ_from_the_nodes(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        assert resumer("start", job, "--db", "r.db", cwd=tmp_path).returncode == 0
    assert resumer("check", "--db", "r.db", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "r.db") as db:
        (complete,) = db.execute("SELECT n FROM counts WHERE level = 2 AND status = 'complete'")
        db.execute("UPDATE counts SET n = n - 2 WHERE level = 2 AND status = 'complete'")
    done = resumer("check", "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 1
    assert (
        f"kept counts differ from the nodes: level 2 complete {complete[0] - 2}"
        f" (counted {complete[0]})"
    ) in done.stderr


def test_check_names_a_broken_counter(tmp_path: Path) -> None:
    with fake_api(TREE, broken=frozenset({"F1"})) as server:
        job = write_job(tmp_path, server.url)
        resumer("start", job, "--db", "r.db", cwd=tmp_path)
    with sqlite3.connect(tmp_path / "r.db") as db:
        (node,) = db.execute("SELECT id FROM nodes WHERE level = 0").fetchone()
        db.execute("UPDATE nodes SET open_children = open_children + 3 WHERE id = ?", (node,))
    done = resumer("check", "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 1
    assert f"open-children counter differs from the children not complete: node(s) {node}" in (
        done.stderr
    )


def test_a_truncated_checkpoint_is_refused_naming_the_last_backup(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url, extra='[backup]\nevery = "1h"\nkeep = 2\n')
        assert resumer("start", job, "--db", "r.db", cwd=tmp_path).returncode == 0
    db = tmp_path / "r.db"
    with api.opened(db) as store:
        from resumer.checkpoint.backups import make_backup

        newest = make_backup(store, db, keep=2)
    size = db.stat().st_size
    with db.open("r+b") as handle:
        handle.truncate(size // 2)
    for command in ("resume", "check", "status"):
        done = resumer(command, "--db", "r.db", cwd=tmp_path)
        assert done.returncode == 2, command
        assert "truncated" in done.stderr
        assert "Traceback" not in done.stderr
    refused = resumer("resume", "--db", "r.db", cwd=tmp_path).stderr
    assert f"the last backup is r.db.backups/{newest.name}" in refused
    assert f"resumer resume --db r.db.backups/{newest.name}" in refused


def test_periodic_backups_keep_the_newest_and_each_is_whole(tmp_path: Path) -> None:
    with fake_api(TREE, latency=0.02) as server:
        job = write_job(tmp_path, server.url, extra='[backup]\nevery = "0.2s"\nkeep = 2\n')
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    kept = backups_of(tmp_path / "r.db")
    assert 1 <= len(kept) <= 2
    for copy in kept:
        assert api.check(copy) == []
