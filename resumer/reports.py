"""What the Python API hands back: an exported node, and a job's status.

Typed and frozen, so a library user's code type-checks and cannot change them;
``JobStatus.as_json`` gives exactly the document ``resumer status --json``
prints. Plain data: nothing here reads the database (``api`` does).

>>> status = resumer.status(Path("features.db"))        # doctest: +SKIP
>>> status.state, status.totals["complete"]             # doctest: +SKIP
('running', 1200)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from resumer.exporter import FlatNode


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
