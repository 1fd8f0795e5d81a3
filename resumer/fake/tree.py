"""The fake API's tree: deterministic, stateless, and its own ground truth.

The tree is a pure function of ``seed``, ``roots`` and ``fanout``: ids are
dotted paths (``F3.7.2``), so the server is stateless and any node's children
can be recomputed, and ``FakeTree.expected_export`` gives the ground truth a
crawl must reproduce. With ``even=False`` (the default) fan-out varies around
the given figure and some nodes have no children.

Owns: the tree's shape, ids, names, types and payloads. Must not: serve HTTP
(``server``) or misbehave (``server.Faults``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TYPES = ("core", "edge", "misc", "beta")
RENAMED_ID, CHILDREN_KEY = "subFeatureId", "children"  # the renamed level's words
ROOT_PREFIX = "F"
NAME_STYLES = ("en", "zh")
# Names for names="zh": what a Chinese company's feature tree calls its features.
ZH_NAMES = (
    "用户管理",
    "订单中心",
    "支付网关",
    "消息推送",
    "数据分析",
    "权限控制",
    "搜索服务",
    "日志审计",
    "库存同步",
    "营销活动",
)


@dataclass(frozen=True)
class FakeTree:
    """A deterministic feature tree.

    >>> tree = FakeTree(seed=1, roots=2, fanout=(3,), even=True)
    >>> [c["id"] for c in tree.children("F1")]
    ['F1.1', 'F1.2', 'F1.3']
    """

    seed: int = 0
    roots: int = 10
    fanout: Sequence[int] = (5, 5, 5)
    even: bool = False
    names: str = "en"  # or "zh": Chinese names ("支付网关 3.7")
    # Items say whether they have children ("hasChildren": true / false), as many APIs do.
    has_children: bool = False
    childless: float | None = None  # share of nodes without children (None: about 1 in 8)
    # The children of level-N nodes are named otherwise (0: none): their id is
    # "subFeatureId", and they come in "children", not "items" (``CHILDREN_KEY``).
    renamed_level: int = 0

    def __post_init__(self) -> None:
        if self.names not in NAME_STYLES:
            raise ValueError(f"names: expected one of {', '.join(NAME_STYLES)}, got {self.names!r}")
        if self.childless is not None and not 0 <= self.childless <= 1:
            raise ValueError(f"childless: expected a share from 0 to 1, got {self.childless!r}")

    def _hash(self, node_id: str) -> int:
        return zlib.crc32(f"{self.seed}:{node_id}".encode())

    def item(self, node_id: str) -> dict[str, Any]:
        h = self._hash(node_id)
        number = node_id[len(ROOT_PREFIX) :]
        if self.names == "zh":
            name = f"{ZH_NAMES[(h >> 8) % len(ZH_NAMES)]} {number}"
        else:
            name = f"Feature {number}"
        level = node_id.count(".") + 1
        item: dict[str, Any] = {
            self.id_key(level): node_id,
            "name": name,
            "type": TYPES[h % len(TYPES)],
            "rank": h % 1000,
        }
        if self.has_children:
            item["hasChildren"] = self.child_count(node_id, level) > 0
        return item

    def id_key(self, level: int) -> str:
        """The key of the id in the items of ``level``."""
        return RENAMED_ID if self.renamed_level and level == self.renamed_level + 1 else "id"

    def items_key(self, level: int) -> str:
        """The key the children of a node of ``level`` come under in ``data``."""
        return CHILDREN_KEY if self.renamed_level and level == self.renamed_level else "items"

    def root_items(self) -> list[dict[str, Any]]:
        return [self.item(f"{ROOT_PREFIX}{i}") for i in range(1, self.roots + 1)]

    def level_of(self, node_id: str) -> int | None:
        """The level of a valid id, or None if the tree has no such node."""
        if not node_id.startswith(ROOT_PREFIX):
            return None
        steps = node_id[len(ROOT_PREFIX) :].split(".")
        if not all(s.isdigit() and s[0] != "0" for s in steps):
            return None
        if int(steps[0]) > self.roots:
            return None
        for depth in range(1, len(steps)):
            parent = ROOT_PREFIX + ".".join(steps[:depth])
            if int(steps[depth]) > self.child_count(parent, depth):
                return None
        return len(steps)

    def child_count(self, node_id: str, level: int) -> int:
        if level > len(self.fanout):
            return 0
        width = self.fanout[level - 1]
        if self.even or width == 0:
            return width
        h = self._hash(node_id + "#")
        if self.childless is not None:
            if (h >> 16) % 1000 < self.childless * 1000:
                return 0
        elif h % 8 == 0:
            return 0  # about one node in eight has no children
        return 1 + (h >> 3) % (2 * width - 1)

    def children(self, node_id: str, level: int | None = None) -> list[dict[str, Any]]:
        level = self.level_of(node_id) if level is None else level
        if level is None:
            raise KeyError(node_id)
        count = self.child_count(node_id, level)
        return [self.item(f"{node_id}.{i}") for i in range(1, count + 1)]

    def walk(self, max_depth: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every node down to ``max_depth`` as (level, item), depth-first in API order."""
        stack = [(1, item) for item in reversed(self.root_items())]
        while stack:
            level, item = stack.pop()
            yield level, item
            if level < max_depth:
                children = self.children(_id_of(item), level)
                stack.extend((level + 1, c) for c in reversed(children))

    def query_count(self, max_depth: int) -> int:
        """How many queries a complete crawl to ``max_depth`` makes (the source list excluded)."""
        return sum(1 for level, _ in self.walk(max_depth) if level < max_depth)

    def expected_export(self, max_depth: int) -> list[dict[str, Any]]:
        """The export a complete crawl must produce (the ground truth)."""
        return [self._expected(item, 1, max_depth) for item in self.root_items()]

    def _expected(self, item: dict[str, Any], level: int, max_depth: int) -> dict[str, Any]:
        children = self.children(_id_of(item), level) if level < max_depth else []
        return {
            "id": _id_of(item),
            "name": item["name"],
            "type": item["type"],
            "level": level,
            "status": "complete",
            "payload": item,
            "children": [self._expected(c, level + 1, max_depth) for c in children],
        }


def _id_of(item: dict[str, Any]) -> str:
    return str(item["id"] if "id" in item else item[RENAMED_ID])


def parse_fanout(text: str) -> tuple[int, ...]:
    """``"5,5,5"`` → ``(5, 5, 5)``; ValueError on anything else."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--fanout: expected comma-separated counts like 5,5,5, got {text!r}")
    return values
