"""JSON lines and CSV exports: a node a row, and they rebuild the nested export exactly."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from resumer import api
from resumer.checkpoint.store import Store
from resumer.errors import ConfigError
from resumer.fake.tree import FakeTree
from resumer.model import Children, Item
from tests.helpers import fake_api, resumer, write_job

TREE = FakeTree(seed=17, roots=5, fanout=(4, 3, 2))


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crawl")
    with fake_api(TREE) as server:
        assert api.run(write_job(folder, server.url), folder / "r.db").exit_status == 0
    return folder / "r.db"


def export(db: Path, fmt: str, **options: Any) -> str:
    out = io.StringIO(newline="")
    api.export_to(db, out, fmt=fmt, **options)
    return out.getvalue()


def rebuild(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nested export from flat rows (depth-first order, parents before children)."""
    by_path: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for row in rows:
        node = {
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "level": int(row["level"]),
            "status": "complete",
            "payload": row["payload"],
            "children": [],
        }
        path = row["path"]
        assert unquote(path.rsplit("/", 1)[-1]) == row["id"]
        by_path[path] = node
        if "/" in path:
            parent = by_path[path.rsplit("/", 1)[0]]
            assert parent["id"] == row["parent_id"]
            parent["children"].append(node)
        else:
            assert row["parent_id"] == ""
            roots.append(node)
    return roots


def test_jsonl_rebuilds_the_json_export(crawled: Path) -> None:
    rows = [json.loads(line) for line in export(crawled, "jsonl").splitlines()]
    assert list(rows[0]) == ["level", "id", "name", "type", "parent_id", "path", "payload"]
    assert rebuild(rows) == json.loads(export(crawled, "json"))


def test_csv_rebuilds_the_json_export(crawled: Path) -> None:
    text = export(crawled, "csv")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == ["level", "id", "name", "type", "parent_id", "path", "payload"]
    rows = [{**row, "payload": json.loads(row["payload"])} for row in reader]
    assert rebuild(rows) == json.loads(export(crawled, "json"))


def test_level_keeps_one_level_and_output_is_deterministic(crawled: Path) -> None:
    rows = [json.loads(line) for line in export(crawled, "jsonl", level=2).splitlines()]
    expected = [item["id"] for level, item in TREE.walk(4) if level == 2]
    assert [row["id"] for row in rows] == expected
    assert export(crawled, "csv", level=3) == export(crawled, "csv", level=3)
    with pytest.raises(ConfigError, match="--level"):
        export(crawled, "json", level=2)


def test_ids_with_slashes_stay_one_step_of_the_path(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "s.db", "job", "job.toml", ".")
    (source,) = store.claim(0, 1)
    store.save([Children(source.node, 0, [Item("a/b", "n", "t", "{}")], 1)], 2)
    (root,) = store.claim(1, 1)
    store.save([Children(root.node, 1, [Item("c%d", "n", "t", "{}")], 1)], 2)
    store.close()
    rows = [json.loads(line) for line in export(tmp_path / "s.db", "jsonl").splitlines()]
    assert [row["path"] for row in rows] == ["a%2Fb", "a%2Fb/c%25d"]


def test_the_cli_writes_csv_to_a_file(crawled: Path, tmp_path: Path) -> None:
    done = resumer("export", "--db", crawled, "--format", "csv", "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("level,id,name")
    bad = resumer("export", "--db", crawled, "--format", "xml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--format: expected one of json, jsonl, csv" in bad.stderr
