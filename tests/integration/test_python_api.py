"""The Python API crawls in-process and yields the same tree as the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import resumer
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, write_job
from tests.helpers import resumer as cli

TREE = FakeTree(seed=18, roots=4, fanout=(3, 3, 2))


def test_the_api_crawls_and_exports_what_the_cli_does(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = resumer.job_from_dict(
            {
                "source": {"url": f"{server.url}/features"},
                "request": {"url": f"{server.url}/children"},
                "response": {"items": "data.items"},
                "levels": {"3": {"workers": 2}},
            }
        )
        outcome = resumer.run(job, tmp_path / "api.db")
        (tmp_path / "cli").mkdir()
        job_file = write_job(tmp_path / "cli", server.url)
        assert cli("start", job_file, "--db", "cli.db", cwd=tmp_path / "cli").returncode == 0
    assert outcome.exit_status == 0
    listed = cli("export", "--db", "cli.db", "--format", "jsonl", cwd=tmp_path / "cli")
    from_cli = [json.loads(line) for line in listed.stdout.splitlines()]
    nodes = list(resumer.export(tmp_path / "api.db"))
    from_api = [
        {key: getattr(node, key) for key in from_cli[0]}  # the payloads are Python objects
        for node in nodes
    ]
    assert from_api == from_cli
    assert {node.status for node in nodes} == {"complete"}
    assert len(from_api) == sum(1 for _ in TREE.walk(4))


def test_a_job_built_in_code_is_stored_and_resumes(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = resumer.job_from_dict(
            {
                "source": {"url": f"{server.url}/features"},
                "request": {"url": f"{server.url}/children", "params": {"id": "{id}"}},
                "response": {"items": "data.items"},
            }
        )
        assert resumer.run(job, tmp_path / "r.db").exit_status == 0
        assert resumer.resume(tmp_path / "r.db").exit_status == 0
    status = resumer.status(tmp_path / "r.db")
    assert status.state == "complete"
    printed = cli("status", "--json", "--db", "r.db", cwd=tmp_path).stdout
    assert status.as_json() == json.loads(printed)


def test_resuming_a_finished_job_runs_nothing_and_says_so(tmp_path: Path) -> None:
    """The library decides that nothing is left (not the CLI): no query, nothing stored."""
    db = tmp_path / "done.db"
    with fake_api(TREE, broken=frozenset({"F2"})) as server:
        job = write_job(tmp_path, server.url)
        assert resumer.run(job, db).failed == 1
        calls = sum(server.stats.snapshot().values())
        before = resumer.status(db)
        again = resumer.resume(db)
        after = sum(server.stats.snapshot().values())
        retried = resumer.resume(db, retry_failed=True)
    assert (again.already_finished, again.complete, again.failed) == (True, False, 1)
    assert (again.queries, again.exit_status, after) == (0, 1, calls)
    assert resumer.status(db).totals == before.totals
    assert not retried.already_finished and retried.queries == 1  # F2 again: still a 400
