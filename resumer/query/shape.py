"""Which items are stored as leaves, and which are not stored: ``[[crawl.leaf]]`` and
``[[crawl.drop]]``, compiled per level of the items they judge.

A drop rule wins over a leaf rule (an item left out is not stored at all); within each
kind the first matching rule, in the job file's order, names it. The conditions are the
answer rules' own (``conditions.FieldTest``). No rule for a level: no ``Shape``, and
the mapping of its items costs nothing more.
"""

from __future__ import annotations

from typing import Any

from resumer.job.settings import Crawl
from resumer.model import Item
from resumer.query.conditions import FieldTest


class Shape:
    """The leaf and drop rules that apply to the items of one level.

    >>> from resumer.job.settings import Condition, ItemRule
    >>> rule = ItemRule(1, Condition("hasChildren", "in", (False,)))
    >>> shape = Shape(leaf=[(1, FieldTest(rule.condition))], drop=[])
    >>> shape.judge({"hasChildren": "false"}), shape.judge({"hasChildren": True})
    ((1, 0), (0, 0))
    """

    __slots__ = ("drop", "leaf")

    def __init__(
        self, leaf: list[tuple[int, FieldTest]], drop: list[tuple[int, FieldTest]]
    ) -> None:
        self.leaf = leaf
        self.drop = drop

    def judge(self, item: Any) -> tuple[int, int]:
        """(the leaf rule, the drop rule) that match ``item`` (a decoded item); 0: none."""
        for number, test in self.drop:
            if test.holds(item):
                return 0, number
        for number, test in self.leaf:
            if test.holds(item):
                return number, 0
        return 0, 0

    def mark(self, mapped: Item, item: Any) -> Item:
        """``mapped`` (the Item made of ``item``) with the rule that matched it; a dropped
        item keeps no payload (it is never stored)."""
        leaf, drop = self.judge(item)
        if drop:
            return Item(mapped.id, mapped.name, mapped.type, "", 0, drop)
        return mapped._replace(leaf=leaf) if leaf else mapped


def shape_of(crawl: Crawl, level: int) -> Shape | None:
    """The rules for items of ``level`` (None: no rule applies). Leaf rules do not apply
    at the leaf level (``crawl.max_depth``), whose items are leaves anyway."""
    leaf = [
        (rule.number, FieldTest(rule.condition))
        for rule in crawl.leaf
        if rule.applies_to(level) and level < crawl.max_depth
    ]
    drop = [
        (rule.number, FieldTest(rule.condition)) for rule in crawl.drop if rule.applies_to(level)
    ]
    return Shape(leaf, drop) if leaf or drop else None
