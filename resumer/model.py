"""The vocabulary the runner, the client and the store share: tasks, items, results.

Plain named tuples: cheap to build on the hot path, immutable, and free of any
database or HTTP detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

STATUSES = ("pending", "running", "waiting", "complete", "failed")
# Counted beside the statuses, per level: the complete nodes that are leaves by a rule
# (a part of "complete"), and the items a rule left out (not nodes: in no status).
SHAPED = ("leaf_by_rule", "dropped")
COUNTED = (*STATUSES, *SHAPED)


class Task(NamedTuple):
    """A node claimed for querying (``node`` is its row; level 0 is the job's source)."""

    node: int
    level: int
    id: str
    name: str
    type: str
    parent_id: str  # the parent's id; "" for a level-1 node
    attempts: int = 0  # calls made for it by earlier claims
    tries: int = 0  # calls made for it in this claim, before a throttle parked it


class Item(NamedTuple):
    """One child as mapped from a response; ``payload`` is the item's JSON text.

    ``leaf`` and ``drop`` name the ``[[crawl.leaf]]`` / ``[[crawl.drop]]`` rule (from 1)
    that matched it: a leaf by rule is stored complete and never queried; a dropped
    item is not stored (it travels this far only to be counted, and shown by probe)."""

    id: str
    name: str
    type: str
    payload: str
    leaf: int = 0
    drop: int = 0


class Streamed:
    """Children not held as a list: read again, one at a time, each time they are
    iterated (a page too big to hold mapped). ``len`` is how many there are; ``waits``
    how many are neither leaves nor dropped by a rule (the children to wait for)."""

    def __init__(self, count: int, waits: int) -> None:
        self.count, self.waits = count, waits

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError


class Children(NamedTuple):
    """A successful query: the node's children, in API order."""

    node: int
    level: int
    items: list[Item] | Streamed
    attempts: int


class Failure(NamedTuple):
    """A query that failed for good; ``error`` is stored as the node's ``last_error``."""

    node: int
    level: int
    error: str
    attempts: int
    id: str = ""  # the node's own id, for messages


class Release(NamedTuple):
    """A query abandoned before it finished (stop requested): the node goes back to pending."""

    node: int
    level: int
    attempts: int


Result = Children | Failure | Release


class Parked(NamedTuple):
    """A query the server throttled, with attempts left: the node stays claimed and is
    queried again once ``due`` (the runner's clock) has come, by whichever worker is
    free, so the wait holds no worker."""

    task: Task
    due: float


class LiveFigures(NamedTuple):
    """How a run fares now, beyond the counts: for the live view and the metrics."""

    breaker: str  # the circuit breaker's state
    limit: int  # calls allowed in flight now
    in_flight: int  # calls in flight now
    send_rate: float | None  # calls a second the pacer allows (None: no limit)
    done: int  # queries finished
    remaining: float  # queries still to make (an estimate: ``crawler.estimate.remaining_queries``)
    queries_per_second: float | None  # over the last minute (None: not known yet)
    eta: float | None  # seconds left at that pace (None: not known)
    paused_until: float | None = None  # Unix time a long wait the API asked for ends

    @property
    def estimated_total(self) -> float:
        return self.done + self.remaining
