"""Tree shape: leaf and drop rules on items, and per-level request and response
settings, against the fake API in-process.

On a ragged tree whose items say ``hasChildren``, a leaf rule makes exactly one call per
node that has children, and the export is the tree; a drop rule removes exactly the
matching items and their would-be subtrees; a level asked with other parameters and
read with other field names completes. ``status`` counts the leaves by rule and the
items dropped, and ``check`` finds nothing wrong.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from resumer import api
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, job_text

RAGGED = FakeTree(seed=31, roots=6, fanout=(5, 4, 3), has_children=True, childless=0.6)
LEAF_RULE = '\n[[crawl.leaf]]\nfield = "hasChildren"\nin = [false]\n'
DROP_RULE = '\n[[crawl.drop]]\nfield = "type"\nin = ["beta"]\nlevel = [2, 3, 4]\n'


def crawl(tree: FakeTree, folder: Path, **job: Any) -> tuple[Counter[str], list[Any]]:
    """Crawl ``tree`` to level 4 with the job's ``job`` parts; the calls per node id and
    the export (the crawl must complete)."""
    with fake_api(tree) as server:
        path = folder / "job.toml"
        path.write_text(job_text(server.url, **job), encoding="utf-8")
        assert api.run(path, folder / "r.db").exit_status == 0
        calls = Counter(server.stats.calls)
    out = io.StringIO()
    api.export_to(folder / "r.db", out)
    assert api.check(folder / "r.db") == []
    return calls, json.loads(out.getvalue())


def queried(tree: FakeTree, *, all_of_them: bool) -> Counter[str]:
    """The nodes of levels 1-3 (those a crawl to level 4 queries), once each: all of
    them, or only those with children."""
    return Counter(
        item["id"]
        for level, item in tree.walk(3)
        if all_of_them or tree.child_count(item["id"], level)
    )


def test_a_leaf_rule_queries_only_the_nodes_that_have_children(tmp_path: Path) -> None:
    calls, exported = crawl(RAGGED, tmp_path, extra=LEAF_RULE)
    assert calls == queried(RAGGED, all_of_them=False)
    assert sum(calls.values()) < 0.6 * sum(queried(RAGGED, all_of_them=True).values())
    assert exported == RAGGED.expected_export(4)
    status = api.status(tmp_path / "r.db")
    childless = Counter(
        level for level, item in RAGGED.walk(3) if not RAGGED.child_count(item["id"], level)
    )
    for level in (1, 2, 3):
        row = status.levels[str(level)]
        assert row["leaf_by_rule"] == childless[level]
        assert row["complete"] == row["total"]
        assert row["dropped"] == 0
    assert status.levels["4"]["leaf_by_rule"] == 0  # leaves anyway: no rule needed
    assert status.totals["leaf_by_rule"] == sum(childless.values())
    assert status.remaining_queries_estimate == 0


def test_without_the_rule_every_node_above_the_leaf_level_is_queried(tmp_path: Path) -> None:
    calls, exported = crawl(RAGGED, tmp_path)
    assert calls == queried(RAGGED, all_of_them=True)
    assert exported == RAGGED.expected_export(4)
    assert api.status(tmp_path / "r.db").totals["leaf_by_rule"] == 0


def without_beta(nodes: list[dict[str, Any]], level: int) -> list[dict[str, Any]]:
    """The export with the items of type "beta" below level 1 removed, subtrees and all."""
    kept = [n for n in nodes if level == 1 or n["type"] != "beta"]
    for node in kept:
        node["children"] = without_beta(node["children"], level + 1)
    return kept


def test_a_drop_rule_removes_the_matching_items_and_their_subtrees(tmp_path: Path) -> None:
    tree = FakeTree(seed=32, roots=5, fanout=(4, 4, 3))
    calls, exported = crawl(tree, tmp_path, extra=DROP_RULE)
    expected = without_beta(tree.expected_export(4), 1)
    assert exported == expected
    assert exported != tree.expected_export(4)  # the tree has beta items to drop

    def ids(nodes: list[dict[str, Any]], below: int) -> list[str]:
        out = []
        for node in nodes:
            if node["level"] <= below:
                out.append(node["id"])
                out += ids(node["children"], below)
        return out

    assert sorted(calls) == sorted(ids(expected, 3))  # no call for a dropped item
    # Dropped per level: the beta items among the children of the nodes kept above.
    dropped = Counter(
        node["level"] + 1
        for node in _walk(expected)
        if node["level"] < 4
        for child in tree.children(node["id"], node["level"])
        if child["type"] == "beta"
    )
    status = api.status(tmp_path / "r.db")
    assert {level: status.levels[str(level)]["dropped"] for level in (1, 2, 3, 4)} == {
        1: 0,
        **{level: dropped[level] for level in (2, 3, 4)},
    }
    assert status.totals["total"] == len(list(_walk(expected)))


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        out.append(node)
        out += _walk(node["children"])
    return out


RENAMED = FakeTree(seed=33, roots=4, fanout=(3, 3, 3), renamed_level=3)
LEVEL_3 = """
[levels.3.request]
params = { subFeatureId = "{id}" }
[levels.3.response]
items = "data.children"
id = "subFeatureId"
"""


def test_a_level_asked_and_read_with_other_words_completes(tmp_path: Path) -> None:
    levels = "[levels.1]\nworkers = 2\n[levels.2]\nworkers = 3\n"  # level 3's is LEVEL_3
    calls, exported = crawl(RENAMED, tmp_path, levels=levels, extra=LEVEL_3)
    assert exported == RENAMED.expected_export(4)
    assert calls == queried(RENAMED, all_of_them=True)
    (leaf,) = [n for n in _walk(exported) if n["id"] == "F1.1.1.1"]
    assert leaf["payload"]["subFeatureId"] == "F1.1.1.1"  # read with level 3's own words


def test_without_the_level_settings_the_renamed_level_fails_clearly(tmp_path: Path) -> None:
    with fake_api(RENAMED) as server:
        path = tmp_path / "job.toml"
        path.write_text(job_text(server.url), encoding="utf-8")
        outcome = api.run(path, tmp_path / "r.db")
    assert outcome.exit_status == 1
    (first, *_) = api.failed(tmp_path / "r.db")
    assert first.level == 3
    assert "items path 'data.items' not found" in first.error
