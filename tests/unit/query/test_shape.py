"""Leaf and drop rules on items (``resumer.query.shape``): which rule names an item, the
levels each applies to, and the mapping and source files marking what they match."""

from __future__ import annotations

from pathlib import Path

from resumer.job.settings import Condition, Crawl, ItemRule, Response
from resumer.model import Item
from resumer.query.mapping import Mapper
from resumer.query.shape import shape_of
from resumer.query.sources import read_source_file

NO_CHILDREN = ItemRule(1, Condition("hasChildren", "in", (False,)))
EMPTY_COUNT = ItemRule(2, Condition("childCount", "in", (0,)), frozenset({2}))
DEPRECATED = ItemRule(1, Condition("type", "in", ("deprecated",)))
NO_ID = ItemRule(2, Condition("id", "missing"), frozenset({3}))


def crawl(leaf: tuple[ItemRule, ...] = (), drop: tuple[ItemRule, ...] = ()) -> Crawl:
    return Crawl(max_depth=4, http_concurrency=4, grace=1.0, leaf=leaf, drop=drop)


def test_no_rule_for_a_level_means_no_shape() -> None:
    assert shape_of(crawl(), 2) is None
    assert shape_of(crawl(leaf=(EMPTY_COUNT,)), 3) is None  # EMPTY_COUNT is for level 2
    assert shape_of(crawl(leaf=(NO_CHILDREN,)), 4) is None  # the leaf level: leaves anyway
    assert shape_of(crawl(drop=(DEPRECATED,)), 4) is not None  # drops apply there too


def test_the_first_matching_rule_names_the_item_and_a_drop_wins_over_a_leaf() -> None:
    shape = shape_of(crawl(leaf=(NO_CHILDREN, EMPTY_COUNT), drop=(DEPRECATED,)), 2)
    assert shape is not None
    assert shape.judge({"hasChildren": False, "childCount": 0}) == (1, 0)
    assert shape.judge({"hasChildren": "false"}) == (1, 0)  # compared as text
    assert shape.judge({"hasChildren": True, "childCount": "0"}) == (2, 0)
    assert shape.judge({"hasChildren": False, "type": "deprecated"}) == (0, 1)
    assert shape.judge({"hasChildren": True}) == (0, 0)
    assert shape.judge({}) == (0, 0)  # absent: not in [false]


def test_the_mapper_marks_leaves_and_drops_an_item_before_reading_its_id() -> None:
    response = Response(items="list", id="id", name="name", type="type")
    mapper = Mapper(response, shape_of(crawl(leaf=(NO_CHILDREN,), drop=(NO_ID,)), 3))
    body = {
        "list": [
            {"id": "a", "name": "A", "type": "t", "hasChildren": False},
            {"name": "no id at all"},
            {"id": "c", "name": "C", "type": "t", "hasChildren": True},
        ]
    }
    a, b, c = mapper.items(body)
    assert (a.id, a.leaf, a.drop) == ("a", 1, 0)
    assert b == Item("", "no id at all", "", "", 0, 2)  # no payload: it is never stored
    assert (c.id, c.leaf, c.drop) == ("c", 0, 0)
    assert c.payload == '{"id":"c","name":"C","type":"t","hasChildren":true}'


def test_source_files_are_shaped_as_level_one(tmp_path: Path) -> None:
    shape = shape_of(crawl(leaf=(NO_CHILDREN,), drop=(DEPRECATED,)), 1)
    (tmp_path / "r.csv").write_text(
        "id,name,type,hasChildren\nA,a,core,false\nB,b,deprecated,true\nC,c,core,true\n"
    )
    (tmp_path / "r.jsonl").write_text(
        '{"id": "A", "hasChildren": false}\n{"id": "B", "type": "deprecated"}\n{"id": "C"}\n'
    )
    response = Response(items="", id="id", name="name", type="type")
    for name in ("r.csv", "r.jsonl"):
        items = list(read_source_file(tmp_path / name, response, shape))
        assert [(i.id, i.leaf, i.drop) for i in items] == [("A", 1, 0), ("B", 0, 1), ("C", 0, 0)]
