"""A checkpoint left by an earlier resumer, killed mid-crawl: every command works on it.

The checkpoint is made by a real crawl killed with SIGKILL (rows in every status:
pending, running, waiting, complete, failed), then taken back to each earlier schema
revision with the migrations' own downgrades, as that release would have left it.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from resumer import api
from resumer._crashpoints import ENV_VAR
from resumer.checkpoint.tables import MIGRATIONS_DIR, SCHEMA_REVISION
from resumer.fake.server import FakeAPI
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


BROKEN = TREE.root_items()[0]["id"]  # the first root fails at once: failed before the kill


@pytest.fixture(scope="module")
def served() -> Iterator[FakeAPI]:
    with fake_api(TREE) as server:
        yield server


@pytest.fixture(scope="module")
def killed(
    served: FakeAPI, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Counter[str], Counter[str]]:
    """One killed crawl for every revision (each test downgrades a copy of it): the
    checkpoint, its nodes per status, and the calls the killed run made."""
    folder = tmp_path_factory.mktemp("killed")
    served.broken = frozenset({BROKEN})
    try:
        db = killed_checkpoint(folder, served.url, BROKEN)
    finally:
        served.broken = frozenset()
    with sqlite3.connect(db) as conn:  # what the kill left in the WAL, into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, statuses(db), served.stats.snapshot()


@pytest.mark.parametrize("revision", earlier_revisions())
def test_a_checkpoint_of_an_earlier_revision_is_read_resumed_and_checked(
    tmp_path: Path,
    revision: str,
    served: FakeAPI,
    killed: tuple[Path, Counter[str], Counter[str]],
) -> None:
    original, before, queried = killed
    assert {"pending", "running", "waiting", "complete", "failed"} <= set(before)
    db = tmp_path / "old.db"
    shutil.copyfile(original, db)
    migrate(db, "downgrade", revision)
    old_bytes = db.read_bytes()

    # The read side on the old file: status, export, check and failed (the library, which
    # the commands call; the commands themselves are the other tests' business).
    info = api.status(db).as_json()
    out = io.StringIO()
    api.export_to(db, out, partial=True)
    problems = api.check(db)
    failed = [node.id for node in api.failed(db)]
    assert db.read_bytes() == old_bytes  # reading upgrades a copy, not the file

    seen = served.stats.snapshot()
    resumed = resumer("resume", "--db", db, "--retry-failed", cwd=tmp_path)
    again = served.stats.snapshot() - seen

    assert info["state"] == "stopped"
    assert info["totals"]["failed"] == before["failed"]
    assert len(json.loads(out.getvalue())) == TREE.roots
    assert problems == []
    assert failed == [BROKEN]
    assert resumed.returncode == 0, resumed.stderr
    assert export_json(db, tmp_path) == TREE.expected_export(4)
    assert api.check(db) == []
    # No query made again because of the upgrade: at most what was claimed (running) at
    # the kill, and the failed node.
    repeated = sum(1 for node, count in again.items() if count and node in queried)
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
