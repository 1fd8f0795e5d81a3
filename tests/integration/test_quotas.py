"""A quota that closes for a while (the fake API's ``quota`` and ``closed_for``: 429 with
``Retry-After`` the seconds left): sat out by the whole crawl when shorter than
``[rate] max_pause``, nothing failed and hardly a call while closed; longer, the run
stops at once with exit 75 and the time to resume after, and a resume once it reopens
completes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from resumer import api
from resumer.checkpoint.tally import Counts
from resumer.fake.server import Faults
from resumer.fake.tree import FakeTree
from resumer.results import HealthProbe
from tests.helpers import export_json, fake_api, job_text, resumer

TREE = FakeTree(seed=3, roots=6, fanout=(5, 4, 3))
QUOTA = TREE.query_count(4) * 2 // 3  # the quota closes once, two thirds of the way


def write(folder: Path, url: str, max_pause: float) -> Path:
    extra = f"[retry]\nmax = 0.5\ninitial = 0.01\n[rate]\nmax_pause = {max_pause}\n"
    job = folder / "job.toml"
    job.write_text(job_text(url, extra=extra), encoding="utf-8")
    return job


class Sampler:
    """A progress hook that samples what ``status`` says of the run while it runs."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.paused: list[str] = []
        self.figures: list[float] = []

    @contextmanager
    def __call__(self, counts: Any, leaf: int, health: HealthProbe) -> Iterator[None]:
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):  # a sample every 0.1 s, for as long as the run lasts
                figures = health()
                if figures.paused_until is not None:
                    self.figures.append(figures.paused_until)
                paused = api.status(self.db).paused_until
                if paused is not None:
                    self.paused.append(paused)

        thread = threading.Thread(target=sample)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def progress_of(sampler: Sampler) -> Any:
    def factory(counts: Counts, leaf: int, health: HealthProbe) -> Any:
        return sampler(counts, leaf, health)

    return factory


def test_a_quota_closed_longer_than_retry_max_is_sat_out_with_nothing_failed(
    tmp_path: Path,
) -> None:
    faults = Faults(quota=QUOTA, closed_for=2.0)
    db = tmp_path / "r.db"
    sampler = Sampler(db)
    with fake_api(TREE, faults=faults) as server:
        job = write(tmp_path, server.url, max_pause=60)
        outcome = api.run(job, db, progress=progress_of(sampler))
        refused = server.stats.statuses[429]
        closed = server.stats.closed
    assert (outcome.exit_status, outcome.failed, closed) == (0, 0, 1)
    assert refused <= 8  # those in flight when it closed, and a probe at its end: a handful
    assert sampler.figures and sampler.paused  # the live view and status said so meanwhile
    assert sampler.paused[0].endswith("Z")
    assert export_json(db, tmp_path) == TREE.expected_export(4)


def test_a_quota_closed_past_max_pause_stops_with_75_and_resume_completes_after_it(
    tmp_path: Path,
) -> None:
    faults = Faults(quota=QUOTA, closed_for=8.0)
    db = tmp_path / "r.db"
    with fake_api(TREE, faults=faults) as server:
        job = write(tmp_path, server.url, max_pause=5)
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
        assert done.returncode == 75, done.stderr
        line = done.stderr.strip().splitlines()[-1]
        status = api.status(db)
        assert (status.state, status.failed, status.paused_until) == ("stopped", 0, None)
        assert status.resume_after is not None
        resume_after = datetime.fromisoformat(status.resume_after)
        assert resume_after > datetime.now(UTC)  # it stopped, rather than sit the wait out
        assert f"wait until {status.resume_after}, longer than [rate] max_pause" in line
        assert "resume after that time with: resumer resume --db r.db" in line.lower()
        # Too early (more than max_pause left): exit 75 at once, the same line.
        again = resumer("resume", "--db", "r.db", cwd=tmp_path)
        assert (again.returncode, again.stderr.strip().splitlines()[-1]) == (75, line)
        port = server.port
    # Time passes (the stored time moved instead of the test waiting) and the API
    # reopens: with less than max_pause left, resume waits the rest out and completes.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE job SET resume_after = ?", (time.time() + 1.0,))
    with fake_api(TREE, port=port):
        began = time.monotonic()
        outcome = api.resume(db)
        waited = time.monotonic() - began
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert waited >= 0.5  # it did wait for the time named (minus the time spent starting)
    assert api.status(db).resume_after is None
    assert export_json(db, tmp_path) == TREE.expected_export(4)
