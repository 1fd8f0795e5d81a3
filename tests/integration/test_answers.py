"""Answers read the way company APIs answer: HTTP 200 with ``{"code", "msg", "data"}``,
errors inside the body, 404 or ``data: null`` for "no children" (the fake API's
``envelope`` mode, in-process).

With the rules a user writes for such an API, a crawl through busy, throttled and lying
answers completes: each of those is asked again, only the denied node fails (with the
API's own words), and the export is the tree. Without rules nothing is stored as "no
children" unless the body said so.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from resumer import api
from resumer.fake.server import Faults
from resumer.fake.tree import FakeTree
from tests.helpers import ENVELOPE_RULES, fake_api, job_text, resumer

TREE = FakeTree(seed=5, roots=6, fanout=(4, 4, 4), names="zh")
DENIED = "F2.3"  # a level-2 node with children: its query is refused for good
RULES = ENVELOPE_RULES
FAST = "[retry]\nattempts = 20\ninitial = 0.01\nmax = 0.05\n"
FAULTS = Faults(
    envelope=True,
    busy_rate=0.05,
    body_throttle_rate=0.05,
    lie_rate=0.05,
    retry_after=0.01,
    denied=frozenset({DENIED}),
)


def partial_export(db: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    api.export_to(db, out, partial=True)
    return list(json.loads(out.getvalue()))


def expected_with_denied(error: str) -> list[dict[str, Any]]:
    """The tree, with the denied node failed (no children) and its ancestor waiting."""
    expected = TREE.expected_export(4)

    def mark(node: dict[str, Any]) -> bool:
        if node["id"] == DENIED:
            node.update(status="failed", children=[], error=error)
            return True
        if any([mark(child) for child in node["children"]]):
            node["status"] = "waiting"
            return True
        return False

    for root in expected:
        mark(root)
    return expected


def test_rules_read_the_envelope_through_busy_throttled_lying_and_denied_answers(
    tmp_path: Path,
) -> None:
    with fake_api(TREE, faults=FAULTS) as server:
        server.stats.keep_events()
        job = tmp_path / "job.toml"
        job.write_text(job_text(server.url, response=RULES, extra=FAST), encoding="utf-8")
        outcome = api.run(job, tmp_path / "r.db")
        events = list(server.stats.events or [])
        seed = server.tree.seed
    assert (outcome.exit_status, outcome.failed) == (1, 1)
    failed = list(api.failed(tmp_path / "r.db"))
    assert [node.id for node in failed] == [DENIED]
    assert failed[0].error.startswith("rule 4 (fail) on HTTP 200 from GET ")
    assert failed[0].error.endswith(": 无权限访问该特性")
    assert partial_export(tmp_path / "r.db") == expected_with_denied(failed[0].error)
    # Every busy, throttled or lying answer was asked again until the real one came.
    asked: defaultdict[str, int] = defaultdict(int)
    for _, target, _ in events:
        if target.startswith("/children"):
            asked[target] += 1
    drawn: Counter[str] = Counter()
    for target, calls in asked.items():
        faults = [FAULTS.draw(seed, target, attempt) for attempt in range(1, calls + 1)]
        drawn.update(fault for fault in faults if fault)
        assert faults[:-1] == [f for f in faults[:-1] if f], target  # faults until the last
        assert faults[-1] is None, f"{target}: its last answer was a fault, {faults}"
    assert set(drawn) == {"busy", "body_throttle", "lie"}  # each fault really happened
    never_asked = len(TREE.children(DENIED, 2))  # the denied node's children
    assert len(asked) == TREE.query_count(4) - never_asked


def test_the_denied_nodes_message_reaches_failed_json_and_the_cli_exits_1(
    tmp_path: Path,
) -> None:
    with fake_api(TREE, faults=Faults(envelope=True, denied=frozenset({DENIED}))) as server:
        job = tmp_path / "job.toml"
        job.write_text(job_text(server.url, response=RULES, extra=FAST), encoding="utf-8")
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    listed = resumer("failed", "--db", "r.db", "--json", cwd=tmp_path)
    [node] = json.loads(listed.stdout)
    assert (node["id"], node["error"].rsplit(": ", 1)[1]) == (DENIED, "无权限访问该特性")
    rows = resumer("export", "--db", "r.db", "--format", "csv", "-o", "t.csv", cwd=tmp_path)
    assert rows.returncode == 0, rows.stderr
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")  # UTF-8, the names as written
    assert TREE.item("F1")["name"] in text and "\\u" not in text


def test_without_rules_no_answer_is_stored_as_no_children_unless_its_body_says_so(
    tmp_path: Path,
) -> None:
    response = '[response]\nitems = "data.list"\nmessage = "msg"\n'
    with fake_api(TREE, faults=Faults(envelope=True)) as server:
        job = tmp_path / "job.toml"
        job.write_text(job_text(server.url, response=response, extra=FAST), encoding="utf-8")
        outcome = api.run(job, tmp_path / "r.db")
    childless = [
        item["id"]
        for level, item in TREE.walk(3)
        if level < 4 and not TREE.children(item["id"], level)
    ]
    assert childless, "the tree has nodes without children"
    failed = {node.id: node.error for node in api.failed(tmp_path / "r.db")}
    assert outcome.exit_status == 1
    assert set(failed) == set(childless)  # data: null and 404 are not "no children" by default
    # Each says why, with the API's own message (response.message).
    for error in failed.values():
        null_data = error.startswith("items path 'data.list' not found") and error.endswith(
            "; the API said: 成功"
        )
        not_found = error.startswith("HTTP 404 from GET ") and error.endswith(": 该特性没有子特性")
        assert null_data or not_found, error


def test_a_stop_rule_stops_the_run_with_nothing_failed_and_resume_finishes(
    tmp_path: Path,
) -> None:
    stop_on_denied = RULES.replace(
        '[[response.rule]]\nfield = "code"\nnot_in = [0]',
        '[[response.rule]]\nfield = "code"\nin = [403]\nthen = "stop"\n\n'
        '[[response.rule]]\nfield = "code"\nnot_in = [0]',
    )
    db = tmp_path / "r.db"
    with fake_api(TREE, faults=Faults(envelope=True, denied=frozenset({DENIED}))) as server:
        port = server.port
        job = tmp_path / "job.toml"
        job.write_text(job_text(server.url, response=stop_on_denied, extra=FAST), encoding="utf-8")
        done = resumer("start", job, "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]  # the one-line error, after the log lines
    assert line.startswith("resumer: error: rule 4 (stop) on HTTP 200 from GET ")
    assert "the API said: 无权限访问该特性. The run stopped" in line
    assert "resume with: resumer resume --db" in line
    status = api.status(db)
    assert (status.state, status.totals["failed"]) == ("stopped", 0)
    with fake_api(TREE, port=port, faults=Faults(envelope=True)):  # the API lets us in again
        again = resumer("resume", "--db", "r.db", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert partial_export(db) == TREE.expected_export(4)


def test_probe_says_which_rule_decided_each_answer(tmp_path: Path) -> None:
    with fake_api(TREE, faults=Faults(envelope=True, denied=frozenset({"F1"}))) as server:
        job = tmp_path / "job.toml"
        job.write_text(job_text(server.url, response=RULES), encoding="utf-8")
        done = resumer("probe", job, "--per-level", "2", cwd=tmp_path, env={"COLUMNS": "250"})
    assert done.returncode == 0, done.stderr  # F2 mapped level 2's items
    assert "200 (rule 4: fail)" in done.stdout  # F1, denied
    assert "200 (no rule)" in done.stdout  # F2's children: code 0 and a list
    assert "无权限访问该特性" in done.stdout
