"""Alerts against a scripted outage: each rule fires once and resolves once; the webhook
receives the JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from resumer import api
from resumer.fake.server import Faults
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, serving, write_job

TREE = FakeTree(seed=16, roots=8, fanout=(6, 5, 4))
PATIENT = "[retry]\nattempts = 100\ninitial = 0.01\nmax = 0.05\n"  # nodes outlive the outage


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Hook)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received


def changes(received: list[dict[str, Any]], rule: str) -> list[str]:
    return [document["state"] for document in received if document["alert"] == rule]


@pytest.mark.parametrize(
    ("rule", "settings"),
    [
        ("error_rate", 'error_rate = 0.5\nwindow = "0.3s"'),
        ("breaker_open", 'breaker_open = "0.3s"'),
        ("stall", 'stall = "0.4s"'),
    ],
)
def test_a_rule_fires_once_in_an_outage_and_resolves_once_after(
    tmp_path: Path, rule: str, settings: str
) -> None:
    threshold = 3 if rule == "breaker_open" else 100_000  # the breaker opens only for its test
    with (
        webhook() as (url, received),
        fake_api(TREE, latency=0.02, faults=Faults(outage=(0.5, 1.5))) as server,
    ):
        extra = (
            f"{PATIENT}[breaker]\nfailure_threshold = {threshold}\nreset_timeout = 0.2\n"
            f'[alerts]\n{settings}\nwebhook = "{url}"\n'
        )
        job = write_job(tmp_path, server.url, extra=extra)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    assert changes(received, rule) == ["firing", "resolved"]
    document = received[0]
    assert set(document) == {"alert", "state", "value", "threshold", "job", "time", "message"}
    assert (document["alert"], document["job"]) == (rule, "job.toml")


def test_failed_nodes_fire_and_resolve_once_the_failures_are_retried(tmp_path: Path) -> None:
    broken = frozenset(item["id"] for _, item in list(TREE.walk(1))[1:4])  # three roots
    with webhook() as (url, received), fake_api(TREE, broken=broken) as server:
        extra = f'[alerts]\nfailed_nodes = 2\nwebhook = "{url}"\n'
        job = write_job(tmp_path, server.url, extra=extra)
        assert api.run(job, tmp_path / "r.db").exit_status == 1
        again = api.resume(tmp_path / "r.db")  # still failed: no second "firing"
        server.broken = frozenset()
        healed = api.resume(tmp_path / "r.db", retry_failed=True)
    assert (again.exit_status, healed.exit_status) == (1, 0)
    assert changes(received, "failed_nodes") == ["firing", "resolved"]
    assert received[0]["value"] == 3
