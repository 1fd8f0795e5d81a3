"""What the Python API hands back and takes: an exported node, a job's status, a change
between two crawls, how a run ended (``Outcome``), and the type of the progress hook a
run calls.

Typed and frozen, so a library user's code type-checks and cannot change them;
``JobStatus.as_json`` gives exactly the document ``resumer status --json``
prints. Plain data: nothing here reads the database (``api`` does).

>>> status = resumer.status(Path("features.db"))        # doctest: +SKIP
>>> status.state, status.totals["complete"]             # doctest: +SKIP
('running', 1200)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from resumer.checkpoint.diff import Difference, Fields
from resumer.checkpoint.export import FlatNode
from resumer.checkpoint.tally import Counts
from resumer.errors import EXIT_FAILED, EXIT_OK, EXIT_PAUSED, EXIT_STOPPED
from resumer.model import LiveFigures


@dataclass(frozen=True, slots=True)
class Node:
    """One exported node: ``payload`` is the item as the API returned it (a dict, as a
    rule), ``path`` the ids from the root, each percent-encoded, joined by ``/``."""

    level: int
    id: str
    name: str
    type: str
    parent_id: str  # "" for a level-1 node
    path: str
    status: str  # pending, running, waiting, complete or failed
    payload: Any

    @classmethod
    def of(cls, row: FlatNode) -> Node:
        payload = json.loads(row.payload)
        return cls(
            row.level, row.id, row.name, row.type, row.parent_id, row.path, row.status, payload
        )


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node's name, type and payload (the item as the API returned it) on one side of
    a change."""

    name: str
    type: str
    payload: Any

    @classmethod
    def of(cls, fields: Fields | None) -> NodeState | None:
        if fields is None:
            return None
        return cls(fields.name, fields.type, json.loads(fields.payload))


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two crawls (``resumer.diff``, ``resumer diff --json``).

    ``change`` is ``added``, ``removed``, ``changed``, ``moved`` (the same id under
    another parent: ``moved_from`` is its old path, ``path`` its new one) or, comparing
    unfinished crawls, ``unfinished`` (``unfinished_in``: the side(s) whose children are
    not known). ``fields``: ``"name"``, ``"type"``, ``"payload.KEY"``.
    """

    change: str
    level: int
    path: tuple[str, ...]
    id: str
    fields: tuple[str, ...] = ()
    before: NodeState | None = None  # None for added
    after: NodeState | None = None  # None for removed
    moved_from: tuple[str, ...] | None = None
    unfinished_in: tuple[str, ...] = ()

    @classmethod
    def of(cls, difference: Difference) -> Change:
        return cls(
            difference.change,
            difference.level,
            difference.path,
            difference.id,
            difference.fields,
            NodeState.of(difference.before),
            NodeState.of(difference.after),
            difference.moved_from,
            difference.unfinished_in,
        )

    def as_json(self) -> dict[str, Any]:
        """The ``diff --json`` line: ``before`` absent for added, ``after`` for removed;
        ``from`` and ``to`` for a move; ``in`` for unfinished."""
        document: dict[str, Any] = {
            "change": self.change,
            "level": self.level,
            "path": list(self.path),
            "id": self.id,
        }
        if self.change == "unfinished":
            document["in"] = list(self.unfinished_in)
            return document
        document["fields"] = list(self.fields)
        for key, state in (("before", self.before), ("after", self.after)):
            if state is not None:
                document[key] = {"name": state.name, "type": state.type, "payload": state.payload}
        if self.moved_from is not None:
            document["from"], document["to"] = list(self.moved_from), list(self.path)
        return document


@dataclass(frozen=True, slots=True)
class JobStatus:
    """The data of ``resumer status --json``, field for field (see README.md).

    ``levels`` maps "1", "2", ... to the counts per status (and ``total``);
    ``totals`` is the same over every level.
    """

    state: str  # running, stopped, complete or failed
    levels: Mapping[str, Mapping[str, int]]
    totals: Mapping[str, int]
    started_at: str | None
    finished_at: str | None
    elapsed_seconds: float
    queries_per_second: float | None
    remaining_queries_estimate: int
    eta_seconds_estimate: float | None
    retries: int
    failed: int
    breaker: str | None
    concurrency_limit: int | None
    send_rate: float | None
    send_rate_reason: str | None
    pid: int | None
    source_error: str | None
    paused_until: str | None = None  # ISO 8601 UTC: a long wait every call sits out
    resume_after: str | None = None  # ISO 8601 UTC: stopped for a wait past max_pause

    def as_json(self) -> dict[str, Any]:
        """The ``status --json`` document: plain dicts, in its key order."""
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["levels"] = {level: dict(row) for level, row in self.levels.items()}
        document["totals"] = dict(self.totals)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobStatus:
        """From the ``status --json`` document (the counts are read-only views)."""
        levels = {level: MappingProxyType(dict(row)) for level, row in document["levels"].items()}
        return cls(
            **{
                **document,
                "levels": MappingProxyType(levels),
                "totals": MappingProxyType(dict(document["totals"])),
            }
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended."""

    stopped: bool  # a stop was requested before the work ran out
    complete: bool  # every node is complete
    failed: int  # nodes failed for good
    queries: int  # results stored by this run
    source_error: str | None = None  # why the level-1 list could not be loaded
    already_finished: bool = False  # nothing was left to query: no run was started
    resume_after: float | None = None  # stopped for a wait past [rate] max_pause: until then

    @property
    def exit_status(self) -> int:
        if self.stopped and self.resume_after is not None:
            return EXIT_PAUSED
        if self.stopped:
            return EXIT_STOPPED
        return EXIT_OK if self.complete else EXIT_FAILED


def iso_utc(stamp: float) -> str:
    """A Unix time as ISO 8601 UTC, to the second: ``2026-12-07T03:15:00Z``."""
    moment = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")


HealthProbe = Callable[[], LiveFigures]  # how the run fares now: for the live view
# Builds the progress display around a run, given a counts snapshot, the leaf level and
# the run's health (breaker state, in-flight limit, send rate).
ProgressFactory = Callable[[Callable[[], Counts], int, HealthProbe], AbstractContextManager[Any]]


def no_progress(
    _snapshot: Callable[[], Counts], _leaf: int, _health: HealthProbe
) -> AbstractContextManager[Any]:
    """The progress hook that shows nothing (a library caller's default)."""
    return contextlib.nullcontext()
