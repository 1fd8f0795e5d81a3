"""``[auth]`` end to end: the real CLI against the fake API's /token and its 401s.

A 401 is never a node's fault: whether the token URL refuses the secret, the
server revokes the tokens mid-crawl or the job has no [auth] at all, the run
stops with exit 2, nothing failed, ``status`` says stopped, and ``resume``
with the credentials fixed completes. No secret or token ever reaches the
checkpoint files, the output, the log or the export.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from resumer import api
from resumer.fake.auth import FakeAuth
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, resumer, spawn, use_engine, write_job

SMALL = FakeTree(seed=2, roots=3, fanout=(3, 2, 2))
SECRET = "cl13nt-s3cret-value"
FAST_RETRY = "[retry]\nattempts = 2\ninitial = 0.01\nmax = 0.05\n"


def oauth2(url: str) -> str:
    return (
        f'[auth]\ntype = "oauth2"\ntoken_url = "{url}/token"\n'
        'client_id = "crawler"\nclient_secret = "${CLIENT_SECRET}"\n'
    )


def exported(db: Path) -> object:
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


def status(db: Path) -> dict[str, Any]:
    return api.status(db).as_json()


def resumed(db: Path, monkeypatch: pytest.MonkeyPatch, **environ: str) -> int:
    """Resume in-process with ``environ`` set; the exit status the CLI would give."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return api.resume(db).exit_status


def failed_total(info: dict[str, Any]) -> int:
    return int(info["totals"]["failed"])


def leaked(secrets: list[str], *places: str | Path) -> list[str]:
    """The secrets found in any of ``places`` (texts, or files read as bytes)."""
    found = []
    for place in places:
        data = place.read_bytes() if isinstance(place, Path) else place.encode()
        found += [s for s in secrets if s.encode() in data]
    return found


def test_one_second_tokens_over_a_crawl_of_seconds_no_stampede_no_leak(
    engine: str, tmp_path: Path
) -> None:
    tree = FakeTree(seed=5, roots=6, fanout=(5, 4, 3))
    auth = FakeAuth(client_id="crawler", client_secret=SECRET, ttl=1.0)
    with fake_api(tree, latency=0.12, auth=auth) as server:
        server.stats.keep_events()
        job = use_engine(write_job(tmp_path, server.url, extra=oauth2(server.url)), engine)
        db, log = tmp_path / "r.db", tmp_path / "run.log"
        done = resumer(
            "start", job, "--db", db, "--log-file", log, "--log-level", "DEBUG",
            cwd=tmp_path, env={"CLIENT_SECRET": SECRET},
        )  # fmt: skip
        wal = [p for p in tmp_path.glob("r.db*") if p.is_file()]  # the db, -wal, -shm if left
        requests = auth.stats()["token_requests"]
        arrivals = [arrived for arrived, _, _ in server.stats.events or []]
    assert done.returncode == 0, done.stderr
    seconds = max(arrivals) - min(arrivals)  # the crawl, from its first call to its last
    assert seconds > 3.0, "the crawl must outlast several token lifetimes"
    assert requests <= 2 * seconds + 3, (requests, seconds)
    assert requests >= 3  # renewed as the tokens expired: the test would not see a stampede
    assert auth.refused == 0  # renewed before expiry: no call was refused on the way
    out = io.StringIO()
    api.export_to(db, out)
    export_text = out.getvalue()
    assert json.loads(export_text) == tree.expected_export(4)
    secrets = [SECRET, *auth.issued]
    assert not leaked(secrets, done.stdout, done.stderr, export_text, log, *wal)
    print(f"{requests} token requests in {seconds:.1f}s of crawl")


def test_a_wrong_secret_stops_with_exit_2_and_resume_with_the_right_one_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = FakeAuth(client_id="crawler", client_secret=SECRET)
    with fake_api(SMALL, auth=auth) as server:
        job = write_job(tmp_path, server.url, extra=oauth2(server.url) + FAST_RETRY)
        db = tmp_path / "r.db"
        done = resumer(
            "start", job, "--db", db, cwd=tmp_path, env={"CLIENT_SECRET": "not-the-secret-x"}
        )
        assert done.returncode == 2, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert "token URL refused the client credentials" in last
        assert "invalid_client" in last and f"resume with: resumer resume --db {db}" in last
        assert "Traceback" not in done.stderr
        info = status(db)
        assert info["state"] == "stopped" and failed_total(info) == 0
        assert resumed(db, monkeypatch, CLIENT_SECRET=SECRET) == 0
    assert exported(db) == SMALL.expected_export(4)


def test_tokens_revoked_mid_crawl_stop_the_run_and_nothing_fails(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = FakeAuth(client_id="crawler", client_secret=SECRET)
    with fake_api(SMALL, latency=0.05, auth=auth) as server:
        job = use_engine(
            write_job(tmp_path, server.url, extra=oauth2(server.url) + FAST_RETRY), engine
        )
        db = tmp_path / "r.db"
        process = spawn("start", job, "--db", db, cwd=tmp_path, env={"CLIENT_SECRET": SECRET})
        try:
            assert server.stats.wait_for(8, timeout=30), "the crawl did not begin"
            auth.revoke()
            auth.client_secret = "rotated-secret"  # the renewal is refused too
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 2, stderr
        last = stderr.strip().splitlines()[-1]
        assert "the token URL refused the client credentials (HTTP 401" in last, last
        assert f"resume with: resumer resume --db {db}" in last
        info = status(db)
        assert info["state"] == "stopped" and failed_total(info) == 0
        assert resumed(db, monkeypatch, CLIENT_SECRET="rotated-secret") == 0
    assert exported(db) == SMALL.expected_export(4)


def test_a_401_without_auth_stops_the_run_and_fails_nothing(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = FakeAuth(tokens=["good-static-token"])
    with fake_api(SMALL, auth=auth) as server:
        request = (
            f'[request]\nurl = "{server.url}/children"\n'
            'headers = { Authorization = "Bearer ${API_TOKEN}" }\n'
        )
        source = '[source]\nfile = "roots.json"\n'
        roots = [dict(r) for r in SMALL.root_items()]
        (tmp_path / "roots.json").write_text(json.dumps(roots), encoding="utf-8")
        job = use_engine(write_job(tmp_path, server.url, request=request, source=source), engine)
        db = tmp_path / "r.db"
        done = resumer("start", job, "--db", db, cwd=tmp_path, env={"API_TOKEN": "stale-token"})
        assert done.returncode == 2, done.stderr
        assert "no [auth] to renew them" in done.stderr and "resume with" in done.stderr
        assert "stale-token" not in done.stderr + done.stdout
        info = status(db)
        assert info["state"] == "stopped" and failed_total(info) == 0
        assert info["levels"]["1"]["pending"] == 3  # put back, not failed
        assert resumed(db, monkeypatch, API_TOKEN="good-static-token") == 0
        assert leaked(["good-static-token", "stale-token"], db) == []


def test_a_token_command_gives_the_bearer_token(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    script = tmp_path / "get_token.py"
    script.write_text(
        "import json, pathlib\n"
        f"pathlib.Path({str(runs)!r}).open('a').write('run\\n')\n"
        "print(json.dumps({'access_token': 'cmd-issued-token', 'expires_in': 3600}))\n",
        encoding="utf-8",
    )
    auth = FakeAuth(tokens=["cmd-issued-token"])
    with fake_api(SMALL, auth=auth) as server:
        extra = f'[auth]\ntype = "bearer"\ntoken_command = "{sys.executable} {script}"\n'
        job = write_job(tmp_path, server.url, extra=extra)
        outcome = api.run(job, tmp_path / "r.db")
    assert outcome.exit_status == 0
    assert runs.read_text().count("run") == 1  # one run for every thread
    assert exported(tmp_path / "r.db") == SMALL.expected_export(4)
    assert not leaked(["cmd-issued-token"], *tmp_path.glob("r.db*"))


def test_a_failing_token_command_stops_with_exit_2(tmp_path: Path) -> None:
    with fake_api(SMALL, auth=FakeAuth()) as server:
        command = f"{sys.executable} -c 'import sys; sys.exit(\\\"no session: log in first\\\")'"
        extra = f'[auth]\ntype = "bearer"\ntoken_command = "{command}"\n'
        job = write_job(tmp_path, server.url, extra=extra)
        done = resumer("start", job, "--db", tmp_path / "r.db", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "token_command failed (exit status 1): no session: log in first" in done.stderr
    assert status(tmp_path / "r.db")["state"] == "stopped"


def test_basic_credentials_crawl_and_never_reach_the_checkpoint(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_PASSWORD", "b4sic-pass")
    auth = FakeAuth(users={"ann": "b4sic-pass"})
    with fake_api(SMALL, auth=auth) as server:
        extra = '[auth]\ntype = "basic"\nusername = "ann"\npassword = "${API_PASSWORD}"\n'
        job = use_engine(write_job(tmp_path, server.url, extra=extra), engine)
        outcome = api.run(job, tmp_path / "r.db")
    assert outcome.exit_status == 0
    assert exported(tmp_path / "r.db") == SMALL.expected_export(4)
    encoded = base64.b64encode(b"ann:b4sic-pass").decode()
    assert not leaked(["b4sic-pass", encoded], *tmp_path.glob("r.db*"))
