"""One process per job: a live holder is refused by name; a dead one never blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resumer.checkpoint.lock import JobLock, holder
from resumer.errors import JobLockedError


def test_a_second_holder_is_refused_with_the_owners_pid(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with JobLock(db):
        assert holder(db) == os.getpid()
        with pytest.raises(JobLockedError, match=f"being run by process {os.getpid()}") as caught:
            JobLock(db).acquire()
        assert caught.value.pid == os.getpid()
    assert holder(db) is None


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    script = (
        "import sys; from pathlib import Path; from resumer.checkpoint.lock import JobLock;"
        f"JobLock(Path({str(db)!r})).acquire(); print('locked', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    assert holder(db) == child.pid
    child.kill()
    child.wait(10)
    assert holder(db) is None
    with JobLock(db):
        assert holder(db) == os.getpid()
