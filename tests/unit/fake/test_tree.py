"""The fake API's tree: ids are dotted paths a pure function of the settings, ``level_of``
accepts exactly the nodes the tree has, the walk is depth-first in API order, uneven fan-out
stays within its bounds, and ``--fanout`` text is parsed or refused."""

from __future__ import annotations

import pytest

from resumer.fake.tree import TYPES, FakeTree, parse_fanout

EVEN = FakeTree(seed=1, roots=2, fanout=(3, 2), even=True)


def test_ids_are_dotted_paths_and_names_follow_them() -> None:
    assert [item["id"] for item in EVEN.root_items()] == ["F1", "F2"]
    assert [child["id"] for child in EVEN.children("F2")] == ["F2.1", "F2.2", "F2.3"]
    assert [child["name"] for child in EVEN.children("F2.3")] == ["Feature 2.3.1", "Feature 2.3.2"]
    assert EVEN.children("F2.3.1") == []  # below the last fan-out: leaves


def test_the_tree_is_a_pure_function_of_its_settings() -> None:
    again = FakeTree(seed=1, roots=2, fanout=(3, 2), even=True)
    assert [again.item(f"F1.{n}") for n in (1, 2, 3)] == EVEN.children("F1")
    items = [FakeTree(seed=seed).item("F1.1") for seed in range(20)]
    assert {item["type"] for item in items} <= set(TYPES)
    assert len({(item["type"], item["rank"]) for item in items}) > 1  # the seed matters


@pytest.mark.parametrize(
    ("node_id", "level"),
    [
        ("F1", 1),
        ("F2.3", 2),
        ("F2.3.2", 3),
        ("F3", None),  # two roots only
        ("F1.4", None),  # three children only
        ("F1.1.3", None),
        ("F01", None),
        ("F1.0", None),
        ("X1", None),
        ("F", None),
        ("F1..2", None),
    ],
)
def test_level_of_accepts_exactly_the_nodes_of_the_tree(node_id: str, level: int | None) -> None:
    assert EVEN.level_of(node_id) == level


def test_an_unknown_node_has_no_children_to_give() -> None:
    with pytest.raises(KeyError):
        EVEN.children("F9")


def test_the_walk_is_depth_first_in_api_order_and_counts_the_queries() -> None:
    tree = FakeTree(seed=0, roots=2, fanout=(2,), even=True)
    walked = [(level, item["id"]) for level, item in tree.walk(2)]
    assert walked == [(1, "F1"), (2, "F1.1"), (2, "F1.2"), (1, "F2"), (2, "F2.1"), (2, "F2.2")]
    assert tree.query_count(2) == 2
    assert EVEN.query_count(3) == 2 + 6


def test_the_expected_export_nests_every_node_complete_down_to_the_depth() -> None:
    (root,) = FakeTree(seed=5, roots=1, fanout=(1, 1), even=True).expected_export(2)
    assert (root["id"], root["level"], root["status"]) == ("F1", 1, "complete")
    assert root["payload"]["id"] == "F1"
    (child,) = root["children"]
    assert (child["id"], child["level"], child["children"]) == ("F1.1", 2, [])


def test_uneven_fan_out_varies_within_its_bounds_and_leaves_some_nodes_childless() -> None:
    tree = FakeTree(seed=7, roots=300, fanout=(5,))
    counts = [len(tree.children(item["id"], 1)) for item in tree.root_items()]
    assert min(counts) == 0
    assert max(counts) <= 2 * 5 - 1
    assert len(set(counts)) > 5


@pytest.mark.parametrize(("text", "fanout"), [("5,5,5", (5, 5, 5)), ("3, 2", (3, 2)), ("0", (0,))])
def test_fanout_text_is_parsed(text: str, fanout: tuple[int, ...]) -> None:
    assert parse_fanout(text) == fanout


@pytest.mark.parametrize("text", ["", "a,b", "1,-1", "1.5"])
def test_bad_fanout_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--fanout: expected comma-separated counts"):
        parse_fanout(text)
