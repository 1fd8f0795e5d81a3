"""A checkpoint left by an earlier resumer, killed mid-crawl: every command works on it.

The checkpoint is made by a real crawl killed with SIGKILL (rows in every status:
pending, running, waiting, complete, failed), then taken back to each earlier schema
revision with the migrations' own downgrades, as that release would have left it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from resumer._crashpoints import ENV_VAR
from resumer.checkpoint.tables import MIGRATIONS_DIR, SCHEMA_REVISION
from resumer.fake.tree import FakeTree
from tests.helpers import export_json, fake_api, resumer, write_job

TREE = FakeTree(seed=31, roots=6, fanout=(5, 4, 3))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def earlier_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in script.walk_revisions() if r.revision != SCHEMA_REVISION]
    return sorted(revisions)


def migrate(path: Path, action: str, revision: str) -> None:
    config = alembic_config()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)
    engine.dispose()
    with sqlite3.connect(path) as conn:  # everything in the main file, as a clean close leaves it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def statuses(path: Path) -> Counter[str]:
    with sqlite3.connect(path) as db:
        return Counter(dict(db.execute("SELECT status, count(*) FROM nodes GROUP BY status")))


def killed_checkpoint(folder: Path, url: str, broken: str) -> Path:
    """A crawl killed after its 6th commit, with one node failed for good."""
    job = write_job(folder, url)
    run = resumer("start", job, "--db", "old.db", cwd=folder, env={ENV_VAR: "after_save:6"})
    assert run.returncode == -9, run.stderr
    db = folder / "old.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert statuses(db)["failed"] >= 1, f"{broken} was not failed before the kill"
    return db


@pytest.mark.parametrize("revision", earlier_revisions())
def test_a_checkpoint_of_an_earlier_revision_is_read_resumed_and_checked(
    tmp_path: Path, revision: str
) -> None:
    broken = TREE.root_items()[0]["id"]  # the first root fails at once: failed before the kill
    with fake_api(TREE, broken=frozenset({broken})) as server:
        db = killed_checkpoint(tmp_path, server.url, broken)
        before = statuses(db)
        assert {"pending", "running", "waiting", "complete", "failed"} <= set(before)
        migrate(db, "downgrade", revision)
        old_bytes = db.read_bytes()

        status = resumer("status", "--db", db, "--json", cwd=tmp_path)
        partial = resumer("export", "--db", db, "--partial", cwd=tmp_path)
        check = resumer("check", "--db", db, cwd=tmp_path)
        failed = resumer("failed", "--db", db, "--json", cwd=tmp_path)
        assert db.read_bytes() == old_bytes  # reading upgrades a copy, not the file

        server.broken = frozenset()
        seen = server.stats.snapshot()
        resumed = resumer("resume", "--db", db, "--retry-failed", cwd=tmp_path)
        again = server.stats.snapshot() - seen
        final_check = resumer("check", "--db", db, cwd=tmp_path)

    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["state"] == "stopped"
    assert info["totals"]["failed"] == before["failed"]
    assert partial.returncode == 0, partial.stderr
    assert len(json.loads(partial.stdout)) == TREE.roots
    assert check.returncode == 0, check.stderr
    assert [node["id"] for node in json.loads(failed.stdout)] == [broken]
    assert resumed.returncode == 0, resumed.stderr
    assert export_json(db, tmp_path) == TREE.expected_export(4)
    assert final_check.returncode == 0, final_check.stderr
    # No query made again because of the upgrade: at most what was claimed (running) at
    # the kill, and the failed node.
    repeated = sum(1 for node, count in again.items() if count and node in seen)
    assert repeated <= before["running"] + before["failed"]
    (backup,) = tmp_path.glob("old.db.before-*.bak")
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (revision,)


def test_the_newest_migration_downgrades_and_upgrades_back_without_loss(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        assert resumer("start", job, "--db", "r.db", cwd=tmp_path).returncode == 0
    db = tmp_path / "r.db"
    expected = export_json(db, tmp_path)
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(SCHEMA_REVISION).down_revision
    assert isinstance(previous, str)
    migrate(db, "downgrade", previous)
    migrate(db, "upgrade", "head")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            SCHEMA_REVISION,
        )
    assert export_json(db, tmp_path) == expected
