"""The export: contracted shape, source and API order, partial trees, byte-identical output."""

from __future__ import annotations

import io
import json
from pathlib import Path

from resumer.checkpoint.export import write_export
from resumer.checkpoint.store import Store
from resumer.model import Children, Failure, Item

LEAF = 3


def item(node_id: str) -> Item:
    return Item(node_id, f"N{node_id}", "t", json.dumps({"id": node_id, "n": [1, "é"]}))


def build(tmp_path: Path) -> Store:
    """A: complete (A.1 with leaves; A.2 childless). B: B.1 failed. C: not queried."""
    store = Store.create(tmp_path / "e.db", "job", "job.toml", ".")
    (source,) = store.claim(0, 1)
    store.save([Children(source.node, 0, [item("A"), item("B"), item("C")], 1)], LEAF)
    a, b, _c = store.claim(1, 3)
    store.save(
        [
            Children(a.node, 1, [item("A.1"), item("A.2")], 1),
            Children(b.node, 1, [item("B.1")], 1),
        ],
        LEAF,
    )
    a1, a2, b1 = store.claim(2, 10)
    store.save(
        [
            Children(a1.node, 2, [item("A.1.2"), item("A.1.1")], 1),
            Children(a2.node, 2, [], 1),
            Failure(b1.node, 2, "HTTP 400 from GET http://x: bad", 3),
        ],
        LEAF,
    )
    store.reset_running()
    return store


def export_of(store: Store, partial: bool = False) -> str:
    out = io.StringIO()
    write_export(store, out, partial=partial)
    return out.getvalue()


def test_only_complete_trees_in_source_then_api_order(tmp_path: Path) -> None:
    store = build(tmp_path)
    (a,) = json.loads(export_of(store))
    assert list(a) == ["id", "name", "type", "level", "status", "payload", "children"]
    assert (a["id"], a["level"], a["status"]) == ("A", 1, "complete")
    assert a["payload"] == {"id": "A", "n": [1, "é"]}
    assert [c["id"] for c in a["children"]] == ["A.1", "A.2"]
    assert [c["id"] for c in a["children"][0]["children"]] == ["A.1.2", "A.1.1"]
    assert a["children"][0]["children"][0]["children"] == []
    assert a["children"][1]["children"] == []


def test_partial_carries_every_root_and_each_failed_nodes_error(tmp_path: Path) -> None:
    store = build(tmp_path)
    a, b, c = json.loads(export_of(store, partial=True))
    assert (b["status"], c["status"]) == ("waiting", "pending")
    (b1,) = b["children"]
    assert b1["status"] == "failed"
    assert b1["error"] == "HTTP 400 from GET http://x: bad"
    assert c["children"] == []
    assert "error" not in a


def test_output_is_byte_identical_from_run_to_run(tmp_path: Path) -> None:
    store = build(tmp_path)
    first = export_of(store, partial=True)
    store.close()
    reopened = Store.open(store.path, migrate=False)
    assert export_of(reopened, partial=True) == first


def test_an_empty_export_is_an_empty_array(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "x.db", "job", "job.toml", ".")
    assert export_of(store) == "[]\n"
    assert json.loads(export_of(store, partial=True)) == []
