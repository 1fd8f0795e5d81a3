"""What the Python API hands back: a run's exit status from its outcome (a stop wins, then
complete or not), ``JobStatus.as_json`` as plain JSON with the contracted keys first and
``from_json`` giving it back read-only, and an exported node's payload parsed from its text."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from resumer.checkpoint.export import FlatNode
from resumer.results import JobStatus, Node, Outcome, iso_utc


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome(stopped=False, complete=True, failed=0, queries=10), 0),
        (Outcome(stopped=False, complete=False, failed=2, queries=10), 1),
        (Outcome(stopped=True, complete=False, failed=0, queries=3), 130),
        (Outcome(stopped=True, complete=True, failed=0, queries=3), 130),
        (Outcome(stopped=True, complete=False, failed=0, queries=3, resume_after=9e9), 75),
        (Outcome(stopped=False, complete=False, failed=0, queries=0, source_error="HTTP 500"), 1),
    ],
)
def test_the_exit_status_of_an_outcome(outcome: Outcome, status: int) -> None:
    assert outcome.exit_status == status


def test_an_outcome_cannot_be_changed() -> None:
    outcome = Outcome(stopped=False, complete=True, failed=0, queries=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.failed = 3  # type: ignore[misc]


ROW = {"pending": 1, "running": 0, "waiting": 2, "complete": 3, "failed": 0, "total": 6}
DOCUMENT: dict[str, Any] = {
    "state": "stopped",
    "levels": {"1": ROW},
    "totals": ROW,
    "started_at": "2026-11-27T06:18:43+00:00",
    "finished_at": None,
    "elapsed_seconds": 4.1,
    "queries_per_second": None,
    "remaining_queries_estimate": 12,
    "eta_seconds_estimate": None,
    "retries": 2,
    "failed": 0,
    "breaker": None,
    "concurrency_limit": None,
    "send_rate": None,
    "send_rate_reason": None,
    "pid": None,
    "source_error": None,
    "paused_until": None,
    "resume_after": "2026-12-07T03:15:00Z",
}


def test_a_status_goes_to_json_and_back_with_the_contracted_keys_first() -> None:
    status = JobStatus.from_json(DOCUMENT)
    document = status.as_json()
    assert document == DOCUMENT
    assert list(document)[:3] == ["state", "levels", "totals"]
    assert json.loads(json.dumps(document)) == DOCUMENT  # plain dicts, not read-only views


def test_a_status_read_back_cannot_be_changed() -> None:
    status = JobStatus.from_json(DOCUMENT)
    with pytest.raises(TypeError):
        status.levels["1"]["failed"] = 9  # type: ignore[index]
    with pytest.raises(TypeError):
        status.totals["failed"] = 9  # type: ignore[index]


def test_a_node_has_its_payload_parsed() -> None:
    row = FlatNode(2, "F1.2", "Feature 1.2", "core", "F1", "F1/F1.2", '{"id": "F1.2", "n": [1]}')
    node = Node.of(row)
    assert node == Node(
        2, "F1.2", "Feature 1.2", "core", "F1", "F1/F1.2", "complete", {"id": "F1.2", "n": [1]}
    )


def test_a_unix_time_is_written_as_iso_8601_utc() -> None:
    assert iso_utc(1796613300.0) == "2026-12-07T03:15:00Z"
    assert iso_utc(0.4) == "1970-01-01T00:00:00Z"
