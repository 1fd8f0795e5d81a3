"""`resumer status` from another terminal while a job runs: counts, pace, ETA, --watch."""

from __future__ import annotations

import json
from pathlib import Path

from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, resumer, spawn, write_job

TREE = FakeTree(seed=14, roots=8, fanout=(6, 5, 4))


def test_status_during_a_run_shows_growing_counts_a_pace_and_an_eta(tmp_path: Path) -> None:
    total = TREE.query_count(4)
    with fake_api(TREE, latency=0.12) as server:  # the last third lasts past a status call
        job = write_job(tmp_path, server.url)
        run = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        assert server.stats.wait_for(total // 3, timeout=60)
        watch = spawn("status", "--db", "r.db", "--watch", "--every", "0.2", cwd=tmp_path)
        first = json.loads(resumer("status", "--db", "r.db", "--json", cwd=tmp_path).stdout)
        assert server.stats.wait_for(2 * total // 3, timeout=60)
        second = json.loads(resumer("status", "--db", "r.db", "--json", cwd=tmp_path).stdout)
        answered = sum(server.stats.snapshot().values())
        run.communicate(timeout=120)
        watched, _ = watch.communicate(timeout=60)  # it ends by itself with the job
    assert (first["state"], second["state"]) == ("running", "running")
    assert first["totals"]["complete"] < second["totals"]["complete"]
    assert second["queries_per_second"] > 0
    assert second["eta_seconds_estimate"] is not None and second["eta_seconds_estimate"] >= 0
    left = total - answered
    assert 0.25 * left <= second["remaining_queries_estimate"] <= 4 * left + 20
    assert run.returncode == 0
    assert watch.returncode == 0
    assert "state: complete" in watched
