"""The hot path: the writes of one open transaction (``Transaction``).

Owns: claiming pending nodes, storing results (a node's children and its own status),
the job's level-1 nodes (``save_source``), completion upward through the
``open_children`` counters, resets and retries, the health and alert records, and the
moves each of these makes to the counts.

Invariants kept here:

- a node's result (children + its own status) is applied only while the node is
  ``running``: a second or late result changes nothing;
- children are unique per (parent, position);
- a node completes when its last open child completes, in the same transaction,
  through an ``open_children`` counter (O(depth), not a scan).

It must not begin, commit or roll back: ``Store.transaction`` does, IMMEDIATE, and
hands a ``Transaction`` its cursor. No ORM objects, no statement compiled per node.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from resumer import _crashpoints
from resumer.checkpoint.tally import Moves
from resumer.errors import TOO_DEEP, UnstorablePage
from resumer.model import Children, Failure, Item, Release, Result, Streamed, Task

SOURCE_CHUNK = 2048  # level-1 nodes read from the source and inserted at a time


class Health(NamedTuple):
    """A running job's pace and policies' state, as ``status`` shows them."""

    breaker: str | None
    limit: int | None
    rate: float | None  # queries a second over the last minute
    new_retries: int  # retries since the last record (when read back: in all)
    send_rate: float | None = None  # calls a second the pacer allowed (None: no limit)
    send_rate_reason: str | None = None  # why it last changed
    paused_until: float | None = None  # Unix time a long wait ends (every call waits)


PriorityOf = Callable[[int, str, str, int], int]  # (level, id, type, parent's) -> priority


def inherit(level: int, item_id: str, item_type: str, parent_priority: int) -> int:
    """The default priority of a new node: its parent's."""
    return parent_priority


class Transaction:
    """The write operations, all inside one open transaction (``Store.transaction``)."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur
        self.moves: Moves = Counter()  # what the writes changed in the counts

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """What is written inside undone if it raises an error, the rest of the transaction
        kept (an interrupt rolls back the whole transaction, as ever)."""
        moves = self.moves.copy()
        self._cur.execute("SAVEPOINT attempt")
        try:
            yield
        except Exception:
            self._cur.execute("ROLLBACK TO attempt")
            self._cur.execute("RELEASE attempt")
            self.moves = moves
            raise
        self._cur.execute("RELEASE attempt")

    def _moved(self, level: int, old: str, new: str, n: int = 1) -> None:
        self.moves[level, old] -= n
        self.moves[level, new] += n

    def set_alert_states(self, states: Mapping[str, str]) -> None:
        """Keep the alerts' states, so a resume does not fire again what already fired."""
        self._cur.execute("UPDATE job SET alerts = ? WHERE id = 1", (json.dumps(dict(states)),))

    def set_health(self, health: Health) -> None:
        """Record how the running job fares (for ``status`` in another terminal)."""
        self._cur.execute(
            "UPDATE job SET breaker_state = ?, concurrency_limit = ?, rate = ?,"
            " retries = retries + ?, health_at = ?, send_rate = ?, send_rate_reason = ?,"
            " paused_until = ? WHERE id = 1",
            (
                health.breaker,
                health.limit,
                health.rate,
                health.new_retries,
                time.time(),
                health.send_rate,
                health.send_rate_reason,
                health.paused_until,
            ),
        )

    def count_moves(self) -> None:
        """Apply what this transaction moved to the kept counts (done at its end)."""
        changed = [
            (level, status, n) for (level, status), n in self.moves.items() if level > 0 and n
        ]
        if changed:
            self._cur.executemany(
                "INSERT INTO counts (level, status, n) VALUES (?, ?, ?)"
                " ON CONFLICT (level, status) DO UPDATE SET n = n + excluded.n",
                changed,
            )

    def retry_failed(self) -> int:
        rows = self._cur.execute(
            "UPDATE nodes SET status = 'pending', last_error = NULL WHERE status = 'failed'"
            " RETURNING level"
        ).fetchall()
        for (level,) in rows:
            self._moved(level, "failed", "pending")
        return len(rows)

    def reset_running(self) -> int:
        rows = self._cur.execute(
            "UPDATE nodes SET status = 'pending' WHERE status = 'running' RETURNING level"
        ).fetchall()
        for (level,) in rows:
            self._moved(level, "running", "pending")
        return len(rows)

    def claim(self, level: int, limit: int) -> list[Task]:
        """Mark up to ``limit`` pending nodes of ``level`` running; return them, highest
        priority first, then oldest."""
        rows = self._cur.execute(
            "SELECT n.id, n.level, n.item_id, n.name, n.type, coalesce(p.item_id, ''), n.attempts"
            " FROM nodes AS n LEFT JOIN nodes AS p ON p.id = n.parent_id"
            " WHERE n.status = 'pending' AND n.level = ? ORDER BY n.priority DESC, n.id LIMIT ?",
            (level, limit),
        ).fetchall()
        if rows:
            self._cur.execute(
                "UPDATE nodes SET status = 'running' WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([row[0] for row in rows]),),
            )
            self._moved(level, "pending", "running", len(rows))
        return [Task(*row) for row in rows]

    def save_source(
        self,
        node: int,
        items: Iterable[Item],
        attempts: int,
        leaf_level: int,
        priority: PriorityOf = inherit,
    ) -> int:
        """Store the level-1 nodes as the children of the job's own node; return how many.

        ``items`` is read SOURCE_CHUNK at a time, so a source file of a million
        roots never sits in memory whole; they are stored all or none, as any
        result. Applies only while the job's node is ``running``.
        """
        cur = self._cur
        row = cur.execute("SELECT status, priority FROM nodes WHERE id = ?", (node,)).fetchone()
        if row is None or row[0] != "running":
            return 0
        now = time.time()
        kin = _Kin.of(node, 1, leaf_level=leaf_level, now=now, weight=row[1], priority=priority)
        iterator, count, shaped = iter(items), 0, _Shaped(0, 0)
        while chunk := list(itertools.islice(iterator, SOURCE_CHUNK)):
            values: list[object] = []
            shaped = shaped.plus(_child_values(values, kin, chunk, first=count))
            _insert_children(cur, values)
            count += len(values) // _COLUMNS
        open_children = count - shaped.leaves
        done = kin.status == "complete" or not open_children
        cur.execute(
            "UPDATE nodes SET status = ?, open_children = ?, attempts = attempts + ?,"
            " completed_at = ? WHERE id = ?",
            (
                "complete" if done else "waiting",
                0 if done else open_children,
                attempts,
                now if done else None,
                node,
            ),
        )
        self._count_children(kin, count, shaped)
        return count

    def save(
        self, results: Sequence[Result], leaf_level: int, priority: PriorityOf = inherit
    ) -> set[int]:
        """Store results; return the levels that gained pending nodes.

        ``priority(level, id, type, parent_priority)`` gives each new child its
        priority (by default, its parent's).

        A result applies only while its node is ``running``: a repeated or late
        one changes nothing. The statements are grouped for the whole batch (one
        UPDATE per kind of outcome, multi-row INSERTs for the children), so a
        commit of many results costs a handful of statements, not a few per node.
        """
        # Failures and releases first: a node that one of them ends in this batch is no longer
        # running when the children come, so it takes none.
        self._fail_or_release(results)
        now = time.time()
        queried = [
            stored
            for outcome, by_node in _by_outcome(results, leaf_level).items()
            for stored in self._mark_queried(outcome, by_node, now)
        ]
        self._add_children(queried, leaf_level, now, priority)
        self._complete_upward(
            Counter(q.parent for q in queried if q.complete and q.parent is not None), now
        )
        return {q.result.level + 1 for q in queried if not q.complete}

    def _fail_or_release(self, results: Iterable[Result]) -> None:
        """Apply the failures (the node is ``failed``) and the releases (``pending`` again,
        to be queried later), in their order, to the nodes still running."""
        cur = self._cur
        for result in results:
            if isinstance(result, Failure):
                cur.execute(
                    "UPDATE nodes SET status = 'failed', last_error = ?,"
                    " attempts = attempts + ? WHERE id = ? AND status = 'running'",
                    (result.error, result.attempts, result.node),
                )
                self._moved(result.level, "running", "failed", cur.rowcount)
            elif isinstance(result, Release):
                cur.execute(
                    "UPDATE nodes SET status = 'pending', attempts = attempts + ?"
                    " WHERE id = ? AND status = 'running'",
                    (result.attempts, result.node),
                )
                self._moved(result.level, "running", "pending", cur.rowcount)

    def _mark_queried(
        self, outcome: _Outcome, by_node: dict[int, Children], now: float
    ) -> list[_Queried]:
        """Give the nodes of ``by_node`` still ``running`` the status of ``outcome``
        (one statement for them all); return those, with their parent and priority."""
        # The ids go in as one JSON array: one statement shape whatever their number, so
        # SQLite's statement cache never fills with near-copies.
        rows = self._cur.execute(
            "UPDATE nodes SET status = ?, open_children = ?, attempts = attempts + ?,"
            " completed_at = CASE WHEN ? = 'complete' THEN ? END"
            " WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))"
            " RETURNING id, parent_id, priority",
            (*outcome, outcome.status, now, json.dumps(list(by_node))),
        ).fetchall()
        complete = outcome.status == "complete"
        for node, _, _ in rows:
            self._moved(by_node[node].level, "running", outcome.status)
        return [_Queried(by_node[node], parent, weight, complete) for node, parent, weight in rows]

    def _add_children(
        self, queried: Iterable[_Queried], leaf_level: int, now: float, priority: PriorityOf
    ) -> None:
        """Insert the children of the nodes just marked queried, in multi-row statements,
        SOURCE_CHUNK children's values at a time at most: a page of 300,000 children is
        not held a second time as one list of their INSERT values."""
        values: list[object] = []  # INSERT values, _COLUMNS per child
        for q in queried:
            result = q.result
            kin = _Kin.of(
                result.node,
                result.level + 1,
                leaf_level=leaf_level,
                now=now,
                weight=q.weight,
                priority=priority,
            )
            items, count, shaped = iter(result.items), 0, _Shaped(0, 0)
            try:
                while chunk := list(itertools.islice(items, SOURCE_CHUNK)):
                    these = _child_values(values, kin, chunk, first=count)
                    count += len(chunk) - these.dropped
                    shaped = shaped.plus(these)
                    if len(values) >= SOURCE_CHUNK * _COLUMNS:
                        _insert_children(self._cur, values)
                        values = []
            except RecursionError:  # a page read again here (``Streamed``), deeper than its check
                (item_id,) = self._cur.execute(
                    "SELECT item_id FROM nodes WHERE id = ?", (result.node,)
                ).fetchone()
                raise UnstorablePage(result.node, item_id, TOO_DEEP) from None
            self._count_children(kin, count, shaped)
        _insert_children(self._cur, values)

    def _count_children(self, kin: _Kin, count: int, shaped: _Shaped) -> None:
        """The moves of ``count`` new children of one kin: the leaves by rule among them
        are complete, and the items left out are counted as dropped."""
        self.moves[kin.level, kin.status] += count - shaped.leaves
        if shaped.leaves:
            self.moves[kin.level, "complete"] += shaped.leaves
            self.moves[kin.level, "leaf_by_rule"] += shaped.leaves
        if shaped.dropped:
            self.moves[kin.level, "dropped"] += shaped.dropped

    def _complete_upward(self, completed: Counter[int], now: float) -> None:
        """Count completed children off their parents (one statement per parent, not per
        child), and carry on upward with every parent that this completes."""
        while completed:
            above: Counter[int] = Counter()
            for parent, count in completed.items():
                row = self._cur.execute(
                    "UPDATE nodes SET open_children = open_children - ?,"
                    " completed_at = CASE WHEN open_children = ? AND status = 'waiting'"
                    " THEN ? ELSE completed_at END,"
                    " status = CASE WHEN open_children = ? AND status = 'waiting'"
                    " THEN 'complete' ELSE status END"
                    " WHERE id = ? RETURNING status, parent_id, level",
                    (count, count, now, count, parent),
                ).fetchall()
                if row and row[0][0] == "complete":  # it was waiting for these last ones
                    _, grandparent, level = row[0]
                    self._moved(level, "waiting", "complete")
                    if grandparent is not None:
                        above[grandparent] += 1
            completed = above


class _Outcome(NamedTuple):
    """How a query ends for a node that got its children: the results of a batch that
    share one are stored by one UPDATE."""

    status: str  # complete (leaves' parents, no children) or waiting (for its children)
    open_children: int
    attempts: int


class _Queried(NamedTuple):
    """A node whose result was applied (it was still running)."""

    result: Children
    parent: int | None
    weight: int  # its priority, which its children inherit by default
    complete: bool


class _Shaped(NamedTuple):
    """How many of a kin's items a rule made leaves, or left out."""

    leaves: int
    dropped: int

    def plus(self, other: _Shaped) -> _Shaped:
        return _Shaped(self.leaves + other.leaves, self.dropped + other.dropped)


class _Kin(NamedTuple):
    """What a node's new children share."""

    parent: int
    level: int
    status: str  # complete at the leaf level, else pending
    done_at: float | None
    weight: int  # the parent's priority
    weigh: PriorityOf | None  # the priority rule; None: children take ``weight``
    now: float  # when they are stored (a leaf's, or a leaf by rule's, completed_at)

    @classmethod
    def of(
        cls,
        parent: int,
        level: int,
        *,
        leaf_level: int,
        now: float,
        weight: int,
        priority: PriorityOf,
    ) -> _Kin:
        leaves = level >= leaf_level
        status, done_at = ("complete", now) if leaves else ("pending", None)
        weigh = None if priority is inherit else priority  # no call per child when unweighted
        return cls(parent, level, status, done_at, weight, weigh, now)


def _by_outcome(results: Iterable[Result], leaf_level: int) -> dict[_Outcome, dict[int, Children]]:
    """The results that give children, grouped by how their node's query ends."""
    outcomes: dict[_Outcome, dict[int, Children]] = {}
    for result in results:
        if isinstance(result, Children):
            # Children to wait for: not leaves, and neither leaves nor left out by a rule.
            if result.level + 1 >= leaf_level:
                waits_for = 0
            else:
                items = result.items
                if isinstance(items, Streamed):
                    waits_for = items.waits  # counted when mapped: not read again for it
                else:
                    waits_for = sum(1 for item in items if not (item.leaf or item.drop))
            if waits_for:
                outcome = _Outcome("waiting", waits_for, result.attempts)
            else:
                outcome = _Outcome("complete", 0, result.attempts)
            outcomes.setdefault(outcome, {})[result.node] = result
    return outcomes


def _child_values(out: list[object], kin: _Kin, items: Iterable[Item], first: int = 0) -> _Shaped:
    """Append the INSERT values of ``kin.parent``'s children (positions from ``first``)
    to ``out``: a leaf by rule is complete, a dropped item is left out. Returns how many
    of each there were."""
    node, level, status, done_at, weight, weigh, _ = kin
    position, leaves, dropped = first, 0, 0
    when: float | None
    rule: int | None
    for item_id, name, kind, payload, leaf, drop in items:
        if drop:
            dropped += 1
            continue
        priority = weight if weigh is None else weigh(level, item_id, kind, weight)
        if leaf and status == "pending":
            leaves += 1
            done, when, rule = "complete", kin.now, leaf
        else:
            done, when, rule = status, done_at, None
        out += (node, level, position, item_id, name, kind, payload, done, priority, when, rule)
        position += 1
    return _Shaped(leaves, dropped)


def _insert_children(cur: sqlite3.Cursor, values: list[object]) -> None:
    """Insert children, 8 values each, in multi-row statements: one statement step for
    many rows, not one per row."""
    start, left = 0, len(values) // _COLUMNS
    while left:
        # Powers of two only: a handful of statement shapes stay cached and reused.
        count = min(_BATCH_ROWS, 1 << (left.bit_length() - 1))
        cur.execute(_insert_sql(count), values[start * _COLUMNS : (start + count) * _COLUMNS])
        _crashpoints.hit("mid_insert")  # a big page half stored, uncommitted: all or none
        start += count
        left -= count


_COLUMNS = 11  # values per inserted child
_BATCH_ROWS = 256  # rows per INSERT at most (11 variables a row; SQLite allows 32,766)


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    """One multi-row INSERT statement for ``rows`` children."""
    values = ", ".join(["(" + ", ".join("?" * _COLUMNS) + ")"] * rows)
    return (
        "INSERT INTO nodes (parent_id, level, position, item_id, name, type, payload, status,"
        f" priority, completed_at, leaf_rule) VALUES {values}"
    )
