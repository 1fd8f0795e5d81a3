"""The whole crawl in-process against the fake API: the tree comes out exactly, the cap holds."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from resumer import api
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, write_job

TREE = FakeTree(seed=3, roots=5, fanout=(4, 3, 3))


def exported(db: Path, partial: bool = False) -> Any:
    out = io.StringIO()
    api.export_to(db, out, partial=partial)
    return json.loads(out.getvalue())


def test_the_export_equals_the_fake_apis_tree_and_each_node_is_queried_once(
    tmp_path: Path,
) -> None:
    with fake_api(TREE, latency=0.002) as server:
        job = write_job(tmp_path, server.url)
        outcome = api.run(job, tmp_path / "r.db")
        calls = server.stats.snapshot()
    assert (outcome.exit_status, outcome.complete, outcome.failed) == (0, True, 0)
    assert exported(tmp_path / "r.db") == TREE.expected_export(4)
    assert sum(calls.values()) == TREE.query_count(4)
    assert set(calls.values()) == {1}


def test_http_concurrency_caps_calls_in_flight_across_levels(tmp_path: Path) -> None:
    tree = FakeTree(seed=4, roots=6, fanout=(6, 6, 2), even=True)
    crawl = "[crawl]\nmax_depth = 4\nhttp_concurrency = 3\n"
    levels = "[levels.1]\nworkers = 4\n[levels.2]\nworkers = 4\n[levels.3]\nworkers = 4\n"
    with fake_api(tree, latency=0.01) as server:
        job = write_job(tmp_path, server.url, crawl=crawl, levels=levels)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        peak, connections = server.stats.max_in_flight, server.stats.connections
    assert peak == 3  # 12 workers, but never more than 3 calls at once (and the cap is used)
    assert connections <= 3  # nor more connections


def test_failed_nodes_keep_ancestors_waiting_and_the_rest_goes_on(tmp_path: Path) -> None:
    broken = frozenset({"F2.1", "F3"})
    with fake_api(TREE, broken=broken) as server:
        job = write_job(tmp_path, server.url)
        outcome = api.run(job, tmp_path / "r.db")
    assert (outcome.exit_status, outcome.failed) == (1, 2)
    complete_roots = [t["id"] for t in exported(tmp_path / "r.db")]
    assert complete_roots == ["F1", "F4", "F5"]
    partial = {t["id"]: t for t in exported(tmp_path / "r.db", partial=True)}
    assert partial["F3"]["status"] == "failed"
    assert partial["F3"]["error"].startswith("HTTP 400 from GET http://127.0.0.1:")
    assert "E_BROKEN" in partial["F3"]["error"]
    (f21,) = [c for c in partial["F2"]["children"] if c["id"] == "F2.1"]
    assert (partial["F2"]["status"], f21["status"]) == ("waiting", "failed")


def test_max_depth_one_stores_the_roots_as_leaves(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url, max_depth=1)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        assert sum(server.stats.snapshot().values()) == 0
    assert exported(tmp_path / "r.db") == TREE.expected_export(1)


def test_the_live_counts_equal_the_checkpoints_after_a_run(tmp_path: Path) -> None:
    """The display and the metrics read counts the runner keeps from each commit, not
    from a scan of the table: after a run with failures they must be the table's."""
    import contextlib

    from resumer.checkpoint.store import Store

    snapshots: list[Any] = []

    def progress(snapshot: Any, leaf_level: int, health: Any) -> Any:
        snapshots.append(snapshot)
        return contextlib.nullcontext()

    with fake_api(TREE, broken=frozenset({"F2.1", "F3"})) as server:
        job = write_job(tmp_path, server.url)
        assert api.run(job, tmp_path / "r.db", progress=progress).exit_status == 1
    store = Store.open(tmp_path / "r.db", migrate=False)
    expected = store.counts()
    store.close()
    assert expected[1]["failed"] == expected[2]["failed"] == 1
    assert snapshots[0]() == expected
