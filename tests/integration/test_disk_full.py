"""A full disk: the run stops cleanly, the checkpoint stays whole, resume continues in place.

Three ways to fill a disk, from the most controlled to the most real: SQLite's own
``max_page_count`` on the store's connection (a real ``SQLITE_FULL`` from SQLite,
in-process), a file that cannot be written (``/dev/full``), and, when the test may
mount one (root), a small tmpfs that the crawl fills and that is then grown.

A WAL checkpoint may be short on disk (its main file holds fewer pages than its
header says) while SQLite reads it whole from its ``-wal`` file: such a checkpoint
is never called truncated; one that is really cut short still is.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from resumer import api
from resumer._crashpoints import MAX_PAGES_VAR
from resumer.checkpoint.backups import PeriodicBackup
from resumer.crawler.runner import QUEUE_DEPTH
from resumer.errors import CheckpointError, ConfigError, DamagedError, WriteError
from resumer.fake.tree import FakeTree
from resumer.ops.logs import LogFile
from tests.helpers import fake_api, resumer, write_job

TREE = FakeTree(seed=12, roots=4, fanout=(4, 3, 5), even=True)
BIG_LEAVES = FakeTree(seed=13, roots=5, fanout=(5, 10, 40), even=True)  # 10,280 nodes
PAGE = 4096
FULL_AT = 150  # pages: BIG_LEAVES needs about 400
# The nodes claimed at once, so queried again at most: each worker's queue and its call.
CLAIMED_AT_MOST = (2 + 3 + 4) * (QUEUE_DEPTH + 1)  # the workers of tests.helpers.job_text


def exported(db: Path) -> Any:
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def crawled(tmp_path: Path, tree: FakeTree = TREE) -> Path:
    """A complete checkpoint of ``tree`` at tmp_path/r.db, everything in its main file."""
    with fake_api(tree) as server:
        job = write_job(tmp_path, server.url)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    return tmp_path / "r.db"


@contextmanager
def held_in_wal(db: Path) -> Iterator[sqlite3.Connection]:
    """``db`` with a write committed to its WAL and not checkpointed into the main file,
    while the block runs (closing the last connection would checkpoint it)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        yield conn
    finally:
        conn.close()


def cut_checkpoint(db: Path, dest: Path, *, write: str) -> Path:
    """A copy at ``dest`` of ``db`` as a full disk leaves it: ``write`` committed to the
    WAL only, then the main file cut to its first page (a checkpoint cut short)."""
    with held_in_wal(db) as conn:
        conn.execute(write)
        shutil.copyfile(db, dest)
        shutil.copyfile(db.with_name(db.name + "-wal"), dest.with_name(dest.name + "-wal"))
    with dest.open("r+b") as handle:
        header_pages = int.from_bytes(handle.read(32)[28:32], "big")
        handle.truncate(PAGE)
    assert header_pages > 1  # the main file is short of what its header says
    return dest


# -- a checkpoint that SQLite reads whole is never called truncated ---------------------


def test_a_checkpoint_whose_wal_holds_what_its_main_file_lacks_is_opened_by_every_command(
    tmp_path: Path,
) -> None:
    db = crawled(tmp_path)
    # VACUUM rewrites every page: in WAL mode all of them land in the WAL.
    cut = cut_checkpoint(db, tmp_path / "cut.db", write="VACUUM")
    assert api.check(cut) == []
    assert api.status(cut).state == "complete"
    assert list(api.failed(cut)) == []
    assert exported(cut) == TREE.expected_export(4)
    done = resumer("resume", "--db", cut, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    assert exported(cut) == TREE.expected_export(4)


def test_a_main_file_cut_short_is_refused_when_its_wal_does_not_hold_the_rest(
    tmp_path: Path,
) -> None:
    db = crawled(tmp_path)
    # One small write: the WAL holds a page or two, the main file's other pages are gone.
    cut = cut_checkpoint(db, tmp_path / "cut.db", write="UPDATE job SET retries = 7")
    for read in (api.check, api.status, exported):
        with pytest.raises(DamagedError, match=r"cut\.db: the checkpoint is truncated"):
            read(cut)
    done = resumer("resume", "--db", cut, cwd=tmp_path)
    assert done.returncode == 2
    assert "cut.db: the checkpoint is truncated" in done.stderr
    no_traceback(done)


def test_a_truncated_main_file_without_a_wal_is_still_refused(tmp_path: Path) -> None:
    db = crawled(tmp_path)
    with db.open("r+b") as handle:
        handle.truncate(PAGE)
    done = resumer("status", "--db", db, cwd=tmp_path)
    assert done.returncode == 2
    assert "the checkpoint is truncated" in done.stderr


# -- the disk fills while a crawl runs ---------------------------------------------------


def test_a_disk_that_fills_mid_crawl_stops_the_run_and_resume_completes_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "r.db"
    with fake_api(BIG_LEAVES) as server:
        job = write_job(tmp_path, server.url)
        monkeypatch.setenv(MAX_PAGES_VAR, str(FULL_AT))  # SQLite says SQLITE_FULL beyond
        with pytest.raises(WriteError) as raised:
            api.run(job, db)
        monkeypatch.delenv(MAX_PAGES_VAR)
        message = str(raised.value)
        assert message == (
            f"{db}: cannot write the checkpoint: the disk is full (database or disk is full);"
            f" nothing committed is lost: once that is fixed, continue with:"
            f" resumer resume --db {db}"
        )
        before = server.stats.snapshot()
        assert 0 < len(before) < BIG_LEAVES.query_count(4)  # it stopped part-way
        with sqlite3.connect(db) as conn:
            running = conn.execute("SELECT count(*) FROM nodes WHERE status = 'running'")
            assert running.fetchone() == (0,)  # the shutdown put the claimed nodes back

        done = resumer("resume", "--db", db, cwd=tmp_path)
        calls = server.stats.snapshot()
    assert done.returncode == 0, done.stderr
    assert exported(db) == BIG_LEAVES.expected_export(4)
    assert sum(calls.values()) - BIG_LEAVES.query_count(4) <= CLAIMED_AT_MOST
    assert set(calls) == {item["id"] for level, item in BIG_LEAVES.walk(3)}


def test_the_disk_full_stop_is_one_line_and_exit_2_from_the_cli(tmp_path: Path) -> None:
    """The CLI's side of the same stop: what ``start`` prints and returns."""
    db = tmp_path / "r.db"
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        done = resumer("start", job, "--db", db, cwd=tmp_path, env={MAX_PAGES_VAR: "12"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("resumer: error")]
    assert lines == [
        f"resumer: error: {db}: cannot write the checkpoint: the disk is full (database or "
        f"disk is full); nothing committed is lost: once that is fixed, continue with: "
        f"resumer resume --db {db}"
    ]
    no_traceback(done)


def test_periodic_backups_that_hit_a_full_disk_warn_and_the_crawl_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tried = threading.Event()
    attempts = []

    class FullDiskStore:
        def backup(self, dest: Path) -> None:
            attempts.append(dest)
            if len(attempts) >= 2:
                tried.set()
            raise CheckpointError(f"{dest}: backup failed (database or disk is full)")

    caplog.set_level(logging.WARNING, logger="resumer")
    with PeriodicBackup(FullDiskStore(), tmp_path / "r.db", every=0.001, keep=2):  # type: ignore[arg-type]
        assert tried.wait(10)  # it kept trying after the first failure
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("backup failed, the crawl goes on" in r.getMessage() for r in warnings)
    assert "database or disk is full" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_an_export_to_a_full_disk_exits_2_with_one_line(tmp_path: Path) -> None:
    db = crawled(tmp_path)
    with pytest.raises(ConfigError, match=r"^/dev/full: cannot write the export \(No space"):
        api.export_file(db, Path("/dev/full"), fmt="csv")
    done = resumer("export", "--db", "r.db", "-o", "/dev/full", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "resumer: error: /dev/full: cannot write the export (No space left on device)"
    )


def test_a_log_file_on_a_full_disk_costs_its_lines_with_one_warning_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = LogFile("/dev/full", maxBytes=1 << 20, backupCount=1, encoding="utf-8")
    logger = logging.getLogger("resumer.test.full")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(3):
            logger.warning("line %d", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capfd.readouterr().err
    assert err == (
        "resumer: warning: cannot write the log file /dev/full (No space left on device);"
        " its lines are lost until it can be written again\n"
    )


# -- a real filesystem that fills, then grows -------------------------------------------


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts a tmpfs")
def test_a_real_filesystem_that_fills_then_grows(tmp_path: Path) -> None:
    with fake_api(BIG_LEAVES) as server, small_tmpfs(tmp_path / "disk", "1m") as disk:
        job = write_job(tmp_path, server.url)
        db = disk / "f.db"
        done = resumer("start", job, "--db", db, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert f"{db}: cannot write the checkpoint: the disk is full" in done.stderr
        no_traceback(done)

        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        for command in (("check",), ("status", "--json")):
            done = resumer(*command, "--db", db, cwd=tmp_path)
            assert done.returncode == 0, (command, done.stderr)
        assert json.loads(done.stdout)["state"] == "stopped"
        done = resumer("resume", "--db", db, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        no_traceback(done)
        assert exported(db) == BIG_LEAVES.expected_export(4)
