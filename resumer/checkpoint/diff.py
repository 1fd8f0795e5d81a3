"""What changed between two crawls: two checkpoints walked side by side, streamed.

A node is the same node in both when its path of ids from the root is the same (among
siblings that share an id, the first with the first, and so on). The walk compares
each such pair (name, type and payload: ``changed``), and descends into the children
of both; a subtree found on one side only is set aside, node by node, in a scratch
SQLite file, not in memory. At the end the nodes set aside are paired by id: an id
that is unique in each whole tree and set aside once on each side is the same node
(``moved`` when its parent is another node; one that came along with its parent is
compared in place); the rest are ``removed`` and ``added``. Ids that repeat in a tree
(local numbering, "1", "2" under every parent) say nothing of identity: no move is
found among them.

Memory holds one node's children per level of depth on each side, never the tree;
each level-1 tree is read in its own short read transactions, as the export does.

With ``partial``, a node not yet queried (pending, running) or failed on either side
has unknown children: it is reported ``unfinished`` and only the children both sides
have are compared, never as removed or added.

Reads only: the two checkpoints are never written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from resumer.checkpoint.export import roots
from resumer.checkpoint.store import NodeRow, Reader, Store

CHANGES = ("added", "removed", "changed", "moved", "unfinished")
KNOWN = ("complete", "waiting")  # a node whose children are all stored
UNIQUE_CHUNK = 50_000  # ids asked about at once, when telling which are unique


class Fields(NamedTuple):
    """What a node holds that a change compares: its name, type and payload (JSON text)."""

    name: str
    type: str
    payload: str


class Difference(NamedTuple):
    """One change. ``path`` is the node's ids from the root (its new place for a move,
    ``moved_from`` the old); ``fields`` what changed: "name", "type", "payload.KEY"
    (a top-level key of the payload), or "payload" when it is not an object."""

    change: str  # one of CHANGES
    level: int
    path: tuple[str, ...]
    id: str
    fields: tuple[str, ...] = ()
    before: Fields | None = None  # absent for added
    after: Fields | None = None  # absent for removed
    moved_from: tuple[str, ...] | None = None
    unfinished_in: tuple[str, ...] = ()  # "old", "new": whose children are unknown


class Tally(NamedTuple):
    """How many nodes of one level each kind of change (or none) touched."""

    level: int
    added: int
    removed: int
    changed: int
    moved: int
    unchanged: int


class Diff:
    """Two checkpoints compared. Iterate ``changes()`` once; ``tallies()`` afterwards.

    ``ignore``: dotted paths inside the payload (``"updatedAt"``, ``"meta.seen"``) left
    out of the comparison. ``level``: only the changes of nodes of that level are
    given (every level is walked).
    """

    def __init__(
        self,
        old: Store,
        new: Store,
        *,
        ignore: Sequence[str] = (),
        level: int | None = None,
        partial: bool = False,
    ) -> None:
        self.old, self.new = old, new
        self._ignore = [tuple(path.split(".")) for path in ignore]
        self._level = level
        self._partial = partial
        self._counts: Counter[tuple[int, str]] = Counter()

    def tallies(self) -> list[Tally]:
        """Per level, the nodes added, removed, changed, moved and unchanged."""
        levels = sorted({level for level, _ in self._counts})
        return [
            Tally(level, *(self._counts[level, kind] for kind in Tally._fields[1:]))
            for level in levels
        ]

    def changes(self) -> Iterator[Difference]:
        """Every change, streamed: the pairs' in tree order, then the moves, removals and
        additions found among the subtrees set aside."""
        with _Aside() as aside:
            for old_root, new_root in _paired(
                roots(self.old, partial=True), roots(self.new, partial=True)
            ):
                if old_root is None:
                    assert new_root is not None
                    with self.new.reading() as reader:
                        aside.put("new", reader, new_root, ())
                elif new_root is None:
                    with self.old.reading() as reader:
                        aside.put("old", reader, old_root, ())
                else:
                    with self.old.reading() as old, self.new.reading() as new:
                        below = old.children(old_root.node), new.children(new_root.node)
                        yield from self._walk(old, new, old_root, new_root, (), aside, *below)
            yield from self._set_aside(aside)

    # -- the walk ------------------------------------------------------------------

    def _walk(
        self,
        old: Reader,
        new: Reader,
        before: NodeRow,
        after: NodeRow,
        above: tuple[str, ...],
        aside: _Aside,
        old_children: list[NodeRow],
        new_children: list[NodeRow],
    ) -> Iterator[Difference]:
        """Compare a pair, then its children (given: read with their siblings')."""
        path = (*above, after.id)
        change = self._compared(before, after, path)
        if change is not None:
            yield change
        unknown = tuple(
            side for side, row in (("old", before), ("new", after)) if row.status not in KNOWN
        )
        if unknown and self._wanted(after.level):
            yield Difference("unfinished", after.level, path, after.id, unfinished_in=unknown)
        if not (old_children or new_children):
            return
        pairs = list(_paired(old_children, new_children))
        matched = [(o.node, n.node) for o, n in pairs if o is not None and n is not None]
        # The grandchildren, a statement a side for the whole family.
        old_below = old.children_of([o for o, _ in matched]) if matched else {}
        new_below = new.children_of([n for _, n in matched]) if matched else {}
        for old_child, new_child in pairs:
            if old_child is not None and new_child is not None:
                yield from self._walk(
                    old,
                    new,
                    old_child,
                    new_child,
                    path,
                    aside,
                    old_below.get(old_child.node, []),
                    new_below.get(new_child.node, []),
                )
            elif unknown:
                continue  # one side's children are not all known: not removed nor added
            elif old_child is not None:
                aside.put("old", old, old_child, path)
            elif new_child is not None:
                aside.put("new", new, new_child, path)

    def _compared(
        self,
        before: NodeRow,
        after: NodeRow,
        path: tuple[str, ...],
        change: str = "changed",
        moved_from: tuple[str, ...] | None = None,
    ) -> Difference | None:
        """The change between two rows of the same node, or None (then it is unchanged)."""
        if change == "changed" and before[3:6] == after[3:6]:  # name, type, payload: as is
            self._counts[after.level, "unchanged"] += 1
            return None
        fields = self._differing(before, after)
        if change == "changed" and not fields:
            self._counts[after.level, "unchanged"] += 1
            return None
        self._counts[after.level, change] += 1
        if not self._wanted(after.level):
            return None
        return Difference(
            change,
            after.level,
            path,
            after.id,
            fields,
            Fields(before.name, before.type, before.payload),
            Fields(after.name, after.type, after.payload),
            moved_from,
        )

    def _differing(self, before: NodeRow, after: NodeRow) -> tuple[str, ...]:
        fields = [key for key in ("name", "type") if getattr(before, key) != getattr(after, key)]
        if before.payload != after.payload:  # the same text: the same payload, no decoding
            said = [(getattr(before, key), getattr(after, key)) for key in fields]
            fields += _payload_fields(before.payload, after.payload, self._ignore, said)
        return tuple(fields)

    def _wanted(self, level: int) -> bool:
        return self._level is None or level == self._level

    # -- what was set aside --------------------------------------------------------

    def _set_aside(self, aside: _Aside) -> Iterator[Difference]:
        """Pair the nodes set aside by id (unique ids only): moves, and the descendants
        that came along; the rest removed and added."""
        candidates = aside.on_both_sides()
        repeated = _repeated(self.old, candidates) | _repeated(self.new, candidates)
        paired = candidates - repeated
        moved = aside.pair(paired)
        with self.old.reading() as old, self.new.reading() as new:
            for old_node, new_node, old_path, new_path, old_parent, new_parent in moved:
                before, after = old.node(old_node), new.node(new_node)
                # Came along with its parent only if that parent is the same node too.
                if old_parent != new_parent or (new_parent and new_parent not in paired):
                    change = self._compared(before, after, new_path, "moved", old_path)
                else:
                    change = self._compared(before, after, new_path)
                if change is not None:
                    yield change
            for side, reader, kind in (("old", old, "removed"), ("new", new, "added")):
                for node, path in aside.unpaired(side):
                    row = reader.node(node)
                    self._counts[row.level, kind] += 1
                    if self._wanted(row.level):
                        held = Fields(row.name, row.type, row.payload)
                        yield Difference(
                            kind,
                            row.level,
                            path,
                            row.id,
                            before=held if kind == "removed" else None,
                            after=held if kind == "added" else None,
                        )


def _paired(
    olds: Iterable[NodeRow], news: Iterable[NodeRow]
) -> Iterator[tuple[NodeRow | None, NodeRow | None]]:
    """Siblings of both sides paired by id (the k-th holder of an id with the k-th): the
    new side's order, then the old side's that have no partner."""
    waiting: dict[tuple[str, int], NodeRow] = {}
    seen: Counter[str] = Counter()
    for row in olds:
        waiting[row.id, seen[row.id]] = row
        seen[row.id] += 1
    seen.clear()
    for row in news:
        yield waiting.pop((row.id, seen[row.id]), None), row
        seen[row.id] += 1
    for row in waiting.values():
        yield row, None


def _payload_fields(
    before: str,
    after: str,
    ignore: Sequence[tuple[str, ...]],
    said: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The top-level payload keys whose values differ (``ignore``d paths left out), as
    "payload.KEY"; "payload" when one side is not an object. A key that only repeats
    the name or type already said (``said``: their values before and after) is left
    out: a renamed feature is ``["name"]``, not ``["name", "payload.name"]``."""
    old, new = json.loads(before), json.loads(after)
    for path in ignore:
        _remove(old, path)
        _remove(new, path)
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else ["payload"]
    keys = [*old, *(key for key in new if key not in old)]
    return [
        f"payload.{key}"
        for key in keys
        if (values := (old.get(key, _ABSENT), new.get(key, _ABSENT)))[0] != values[1]
        and values not in said
    ]


_ABSENT = object()


def _remove(document: Any, path: tuple[str, ...]) -> None:
    """Take the value at ``path`` out of ``document`` (nothing if there is none)."""
    *steps, last = path
    for step in steps:
        document = document.get(step) if isinstance(document, dict) else None
    if isinstance(document, dict):
        document.pop(last, None)


def _repeated(store: Store, ids: set[str]) -> set[str]:
    """Which of ``ids`` more than one node of ``store`` holds."""
    found: set[str] = set()
    listed = sorted(ids)
    for start in range(0, len(listed), UNIQUE_CHUNK):
        with store.reading() as reader:
            found |= reader.repeated_ids(listed[start : start + UNIQUE_CHUNK])
    return found


class _Pair(NamedTuple):
    """A node set aside on both sides: its rows, paths and parents' ids."""

    old_node: int
    new_node: int
    old_path: tuple[str, ...]
    new_path: tuple[str, ...]
    old_parent: str
    new_parent: str


class _Aside:
    """The nodes of the subtrees found on one side only, in a scratch SQLite file: the
    node's row on its side, its id, its parent's id and its path."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="resumer-diff-")
        self._db = sqlite3.connect(Path(self._folder.name) / "aside.db")
        self._db.execute(
            "CREATE TABLE aside (seq INTEGER PRIMARY KEY, side TEXT NOT NULL,"
            " node INTEGER NOT NULL, item_id TEXT NOT NULL, parent_id TEXT NOT NULL,"
            " path TEXT NOT NULL, paired INTEGER NOT NULL DEFAULT 0)"
        )

    def __enter__(self) -> _Aside:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._folder.cleanup()

    def put(self, side: str, reader: Reader, row: NodeRow, above: tuple[str, ...]) -> None:
        """Set aside ``row`` and its whole subtree (one node's children at a time)."""
        stack = [(row, above)]
        while stack:
            node, parents = stack.pop()
            path = (*parents, node.id)
            self._db.execute(
                "INSERT INTO aside (side, node, item_id, parent_id, path) VALUES (?, ?, ?, ?, ?)",
                (side, node.node, node.id, parents[-1] if parents else "", json.dumps(path)),
            )
            stack.extend((child, path) for child in reversed(reader.children(node.node)))

    def on_both_sides(self) -> set[str]:
        """Ids set aside exactly once on each side."""
        rows = self._db.execute(
            "SELECT item_id FROM aside GROUP BY item_id"
            " HAVING sum(side = 'old') = 1 AND sum(side = 'new') = 1"
        )
        return {row[0] for row in rows}

    def pair(
        self, ids: set[str]
    ) -> list[tuple[int, int, tuple[str, ...], tuple[str, ...], str, str]]:
        """The pairs of ``ids`` (old row, new row, their paths and parents), marked
        paired; in the new side's order."""
        self._db.execute("CREATE TEMP TABLE chosen (item_id TEXT PRIMARY KEY)")
        self._db.executemany("INSERT INTO chosen VALUES (?)", ((i,) for i in ids))
        rows = self._db.execute(
            "SELECT o.node, n.node, o.path, n.path, o.parent_id, n.parent_id"
            " FROM aside AS n JOIN aside AS o ON o.item_id = n.item_id AND o.side = 'old'"
            " WHERE n.side = 'new' AND n.item_id IN (SELECT item_id FROM chosen)"
            " ORDER BY n.seq"
        ).fetchall()
        self._db.execute(
            "UPDATE aside SET paired = 1 WHERE item_id IN (SELECT item_id FROM chosen)"
        )
        return [
            _Pair(old, new, tuple(json.loads(a)), tuple(json.loads(b)), pa, pb)
            for old, new, a, b, pa, pb in rows
        ]

    def unpaired(self, side: str) -> Iterator[tuple[int, tuple[str, ...]]]:
        """The nodes of ``side`` not paired, in the order they were set aside."""
        rows = self._db.execute(
            "SELECT node, path FROM aside WHERE side = ? AND NOT paired ORDER BY seq", (side,)
        )
        for node, path in rows:
            yield node, tuple(json.loads(path))
