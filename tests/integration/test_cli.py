"""The real `resumer` command as a subprocess against the fake API on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from resumer.fake.tree import FakeTree
from tests.helpers import export_json, fake_api, resumer, spawn, write_csv_roots, write_job

TREE = FakeTree(seed=11, roots=4, fanout=(3, 3, 2))


def test_start_get_exits_0_and_export_equals_the_tree(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout
    assert export_json(tmp_path / "r.db", tmp_path) == TREE.expected_export(4)


def test_post_with_a_templated_body(tmp_path: Path) -> None:
    request = (
        '[request]\nurl = "{url}/children"\nmethod = "POST"\n'
        'body = { featureId = "{id}", featureName = "{name}", featureType = "{type}", '
        'depth = "{level}" }\n'
    )
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url, request=request.replace("{url}", server.url))
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
        assert sum(server.stats.snapshot().values()) == TREE.query_count(4)
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == TREE.expected_export(4)


def test_an_export_whose_reader_stopped_reading_says_nothing(tmp_path: Path) -> None:
    # `resumer export | head -1`: the reader goes, the export stops with no error line.
    with fake_api(TREE) as server:
        done = resumer("start", write_job(tmp_path, server.url), "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    exporting = spawn("export", "--db", "r.db", "--format", "jsonl", cwd=tmp_path)
    assert exporting.stdout is not None
    exporting.stdout.close()  # before the first line: every write meets a closed pipe
    _, said = exporting.communicate(timeout=60)
    assert (exporting.returncode, said) == (2, "")


def test_csv_source_with_rows_as_payloads(tmp_path: Path) -> None:
    expected = write_csv_roots(tmp_path, TREE, count=2)
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url, source='[source]\nfile = "roots.csv"\n')
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == expected


def test_a_bad_job_file_exits_2_with_one_line_and_leaves_no_database(tmp_path: Path) -> None:
    job = write_job(tmp_path, "http://127.0.0.1:9", extra="[crawl]\nmax_depth = 3\n")
    done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "job.toml" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r.db").exists()


def test_an_undefined_variable_exits_2_and_leaves_no_database(tmp_path: Path) -> None:
    job = write_job(
        tmp_path,
        "http://127.0.0.1:9",
        request='[request]\nurl = "http://127.0.0.1:9/c"\n'
        'headers = { X = "${NOT_SET_ANYWHERE}" }\n',
    )
    done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE is not set" in done.stderr
    assert not (tmp_path / "r.db").exists()


def test_start_on_a_database_that_holds_a_job_exits_2(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        assert resumer("start", job, "--db", "r.db", cwd=tmp_path).returncode == 0
        again = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a job" in again.stderr


@pytest.mark.parametrize("command", ["resume", "status", "export"])
def test_commands_on_a_missing_database_exit_2(tmp_path: Path, command: str) -> None:
    done = resumer(command, "--db", "none.db", cwd=tmp_path)
    assert done.returncode == 2
    assert "none.db: no such database" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_failures_exit_1_and_point_at_the_partial_export(tmp_path: Path) -> None:
    with fake_api(TREE, broken=frozenset({"F2.2"})) as server:
        job = write_job(tmp_path, server.url)
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
        resumed = resumer("resume", "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 1
    assert "1 failed node(s)" in done.stderr
    assert "resumer export --db r.db --partial" in done.stderr
    assert resumed.returncode == 1  # resume does not retry failed nodes
    assert "already finished with 1 failed" in resumed.stderr
    status = json.loads(resumer("status", "--db", "r.db", "--json", cwd=tmp_path).stdout)
    assert status["state"] == "failed"
    assert status["totals"]["failed"] == 1


def test_resume_of_a_complete_job_says_so_and_exits_0(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        assert resumer("start", job, "--db", "r.db", cwd=tmp_path).returncode == 0
        before = server.stats.received
        done = resumer("resume", "--db", "r.db", cwd=tmp_path)
        assert server.stats.received == before
    assert done.returncode == 0
    assert "already complete" in done.stdout


def test_status_json_keeps_the_contracted_shape(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        resumer("start", job, "--db", "r.db", cwd=tmp_path)
    done = resumer("status", "--db", "r.db", "--json", cwd=tmp_path)
    assert done.returncode == 0
    status = json.loads(done.stdout)
    assert list(status)[:3] == ["state", "levels", "totals"]
    assert status["remaining_queries_estimate"] == 0
    assert status["finished_at"] is not None
    assert status["state"] == "complete"
    assert list(status["levels"]) == ["1", "2", "3", "4"]
    keys = ["pending", "running", "waiting", "complete", "failed", "total"]
    keys += ["leaf_by_rule", "dropped"]  # counted beside the statuses (CONTRACT, Tree shape)
    assert all(list(level) == keys for level in status["levels"].values())
    with sqlite3.connect(tmp_path / "r.db") as db:
        nodes = db.execute("SELECT count(*) FROM nodes WHERE level > 0").fetchone()[0]
    assert status["totals"]["complete"] == status["totals"]["total"] == nodes
    table = resumer("status", "--db", "r.db", cwd=tmp_path)
    assert "state: complete" in table.stdout


def test_export_to_a_file(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = write_job(tmp_path, server.url)
        resumer("start", job, "--db", "r.db", cwd=tmp_path)
    done = resumer("export", "--db", "r.db", "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 0
    assert json.loads((tmp_path / "out.json").read_text()) == TREE.expected_export(4)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_secrets_reach_neither_the_database_nor_the_logs(tmp_path: Path) -> None:
    secret = "s3cr3t-Value"
    with fake_api(TREE, broken=frozenset({"F1"})) as server:
        request = (
            f'[request]\nurl = "{server.url}/children"\n'
            'params = { id = "{id}", key = "${API_KEY}" }\n'
            'headers = { Authorization = "Bearer ${API_KEY}" }\n'
        )
        job = write_job(tmp_path, server.url, request=request)
        done = resumer(
            "start",
            job,
            "--db",
            "r.db",
            "--log-level",
            "DEBUG",
            "--log-file",
            "run.log",
            cwd=tmp_path,
            env={"API_KEY": secret},
        )
    assert done.returncode == 1, done.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("r.db*"))
    assert b"${API_KEY}" in stored
    assert secret.encode() not in stored
    log = (tmp_path / "run.log").read_text()
    assert "failed" in log
    assert secret not in log + done.stderr + done.stdout


def test_a_second_process_on_a_running_job_is_refused_by_pid(tmp_path: Path) -> None:
    with fake_api(FakeTree(seed=1, roots=2, fanout=(2,)), latency=30) as server:
        job = write_job(tmp_path, server.url, max_depth=2)
        first = spawn("start", job, "--db", "r.db", cwd=tmp_path)
        try:
            assert server.stats.wait_for(1, timeout=60)  # the first run is loading its roots
            second = resumer("resume", "--db", "r.db", cwd=tmp_path)
            status = json.loads(resumer("status", "--db", "r.db", "--json", cwd=tmp_path).stdout)
        finally:
            first.kill()
            first.communicate(timeout=30)
    assert second.returncode == 2
    assert f"being run by process {first.pid}" in second.stderr
    assert status["state"] == "running"


def test_a_source_that_cannot_be_loaded_exits_1_and_says_why(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        source = f'[source]\nurl = "{server.url}/no-such-list"\n'
        job = write_job(tmp_path, server.url, source=source)
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 1
    assert "the level-1 list could not be loaded: HTTP 404 from GET" in done.stderr
    assert "/no-such-list" in done.stderr
