"""Recurring crawls: the fake API crawled, its tree changed by known edits, crawled again
with ``start --from``, and ``resumer diff`` (the real CLI) lists exactly those edits;
the same tree twice shows none; ``--ignore`` hides a field that changes every time;
``start --from`` on an unfinished checkpoint, and a note when the jobs differ."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resumer import api
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, resumer, write_job


@dataclass(frozen=True)
class EditedTree(FakeTree):
    """A fake tree with known edits: names, a payload field, subtrees removed, added and
    moved (to another parent at the same level), and a stamp on every item."""

    renamed: Mapping[str, str] = field(default_factory=dict)
    priced: Mapping[str, int] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    added: Mapping[str, str] = field(default_factory=dict)  # new id -> its parent
    moved: Mapping[str, str] = field(default_factory=dict)  # id -> its new parent
    stamp: str = ""

    def item(self, node_id: str) -> dict[str, Any]:
        item = super().item(node_id)
        if node_id in self.renamed:
            item["name"] = self.renamed[node_id]
        if node_id in self.priced:
            item["price"] = self.priced[node_id]
        if self.stamp:
            item["updatedAt"] = self.stamp
        return item

    def level_of(self, node_id: str) -> int | None:
        if node_id in self.added:
            parent = self.level_of(self.added[node_id])
            return None if parent is None else parent + 1
        return super().level_of(node_id)

    def children(self, node_id: str, level: int | None = None) -> list[dict[str, Any]]:
        level = self.level_of(node_id) if level is None else level
        kept = [
            child
            for child in super().children(node_id, level)
            if child["id"] not in self.removed and child["id"] not in self.moved
        ]
        came = [i for i, parent in {**self.added, **self.moved}.items() if parent == node_id]
        return kept + [self.item(i) for i in came]


BASE = dict(seed=41, roots=4, fanout=(3, 3, 2), even=True)
EDITED = EditedTree(
    **BASE,  # type: ignore[arg-type]
    renamed={"F1.2": "Feature 1.2, renamed"},
    priced={"F2.1.1": 12},
    removed=frozenset({"F3.2"}),
    added={"F1.1.9": "F1.1"},
    moved={"F4.3": "F1"},
)


def crawl_twice(folder: Path, second: FakeTree) -> tuple[Path, Path]:
    """``old.db`` from the base tree, then ``new.db`` from ``second`` with start --from."""
    with fake_api(FakeTree(**BASE)) as server:  # type: ignore[arg-type]
        job = write_job(folder, server.url)
        assert resumer("start", job, "--db", "old.db", cwd=folder).returncode == 0
        server.tree = second
        again = resumer("start", "--from", "old.db", "--db", "new.db", cwd=folder)
    assert again.returncode == 0, again.stderr
    assert "crawling the job stored in old.db again, into new.db" in again.stderr
    return folder / "old.db", folder / "new.db"


def diff_lines(folder: Path, *options: str) -> tuple[int, list[dict[str, Any]]]:
    done = resumer("diff", "old.db", "new.db", "--json", *options, cwd=folder)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def summary(lines: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted(
        (line["change"], "/".join(line["path"]), tuple(line.get("fields", ()))) for line in lines
    )


def test_diff_lists_exactly_the_edits_between_two_crawls(tmp_path: Path) -> None:
    crawl_twice(tmp_path, EDITED)
    status, lines = diff_lines(tmp_path)
    assert status == 1
    removed = ["F3/F3.2", *(f"F3/F3.2/F3.2.{i}" for i in (1, 2, 3))]
    removed += [f"F3/F3.2/F3.2.{i}/F3.2.{i}.{j}" for i in (1, 2, 3) for j in (1, 2)]
    added = ["F1/F1.1/F1.1.9", "F1/F1.1/F1.1.9/F1.1.9.1", "F1/F1.1/F1.1.9/F1.1.9.2"]
    assert summary(lines) == sorted(
        [
            ("changed", "F1/F1.2", ("name",)),
            ("changed", "F2/F2.1/F2.1.1", ("payload.price",)),
            ("moved", "F1/F4.3", ()),
            *(("removed", path, ()) for path in removed),
            *(("added", path, ()) for path in added),
        ]
    )
    by_kind = {line["change"]: line for line in lines}
    moved = by_kind["moved"]
    assert (moved["from"], moved["to"], moved["level"]) == (["F4", "F4.3"], ["F1", "F4.3"], 2)
    renamed = next(line for line in lines if line["path"] == ["F1", "F1.2"])
    assert renamed["before"]["name"] == "Feature 1.2"
    assert renamed["after"]["name"] == "Feature 1.2, renamed"
    assert renamed["after"]["payload"]["id"] == "F1.2"
    assert "after" not in by_kind["removed"] and "before" not in by_kind["added"]
    # The terminal view: a table per level and the first changes.
    shown = resumer("diff", "old.db", "new.db", cwd=tmp_path, env={"COLUMNS": "200"})
    assert shown.returncode == 1
    assert "16 difference(s)" in shown.stdout
    assert "name: Feature 1.2 -> Feature 1.2, renamed" in shown.stdout
    # One level only.
    _, level_2 = diff_lines(tmp_path, "--level", "2")
    assert summary(level_2) == [
        ("changed", "F1/F1.2", ("name",)),
        ("moved", "F1/F4.3", ()),
        ("removed", "F3/F3.2", ()),
    ]
    # The Python API gives the same changes, typed.
    changes = list(api.diff(tmp_path / "old.db", tmp_path / "new.db"))
    assert sorted(c.as_json()["change"] for c in changes) == sorted(x["change"] for x in lines)


def test_the_same_tree_twice_has_no_difference(tmp_path: Path) -> None:
    crawl_twice(tmp_path, FakeTree(**BASE))  # type: ignore[arg-type]
    assert diff_lines(tmp_path) == (0, [])
    shown = resumer("diff", "old.db", "new.db", cwd=tmp_path)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert "no difference" in shown.stdout


def test_ignore_hides_a_field_that_changes_every_time(tmp_path: Path) -> None:
    stamped = EditedTree(**BASE, renamed={"F2.2.2": "new name"}, stamp="2026-12-07")  # type: ignore[arg-type]
    crawl_twice(tmp_path, stamped)
    _, every = diff_lines(tmp_path)
    assert len(every) == 4 + 12 + 36 + 72  # every node gained updatedAt
    assert {tuple(line["fields"]) for line in every} == {
        ("payload.updatedAt",),
        ("name", "payload.updatedAt"),
    }
    status, lines = diff_lines(tmp_path, "--ignore", "payload.updatedAt")
    assert status == 1
    assert summary(lines) == [("changed", "F2/F2.2/F2.2.2", ("name",))]


def test_start_from_an_unfinished_checkpoint_and_a_diff_of_it(tmp_path: Path) -> None:
    tree = FakeTree(**BASE)  # type: ignore[arg-type]
    with fake_api(tree, broken=frozenset({"F2.1"})) as server:  # 400: failed for good
        job = write_job(tmp_path, server.url)
        assert resumer("start", job, "--db", "old.db", cwd=tmp_path).returncode == 1
        server.broken = frozenset()
        again = resumer("start", "--from", "old.db", "--db", "new.db", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    refused = resumer("diff", "old.db", "new.db", cwd=tmp_path)
    assert refused.returncode == 2
    assert "old.db: the crawl is not complete (1 failed)" in refused.stderr
    status, lines = diff_lines(tmp_path, "--partial")
    assert status == 0  # nothing differs where both crawls know
    unfinished = {"change": "unfinished", "level": 2, "path": ["F2", "F2.1"], "id": "F2.1"}
    assert lines == [{**unfinished, "in": ["old"]}]


def test_a_diff_of_two_different_jobs_says_so_and_compares_anyway(tmp_path: Path) -> None:
    crawl_twice(tmp_path, FakeTree(**BASE))  # type: ignore[arg-type]
    with sqlite3.connect(tmp_path / "new.db") as db:
        db.execute("UPDATE job SET job_text = job_text || '\n# another job'")
    done = resumer("diff", "old.db", "new.db", cwd=tmp_path)
    assert done.returncode == 0
    assert "note: old.db and new.db hold different job files: compared anyway" in done.stderr


def test_the_tree_view_answers_the_documented_queries(tmp_path: Path) -> None:
    _, new = crawl_twice(tmp_path, EDITED)
    with sqlite3.connect(new) as db:
        by_type = dict(db.execute("SELECT type, count(*) FROM tree GROUP BY type"))
        priced = db.execute(
            "SELECT id, json_extract(payload, '$.price') FROM tree"
            " WHERE json_extract(payload, '$.price') IS NOT NULL"
        ).fetchall()
        moved = db.execute("SELECT level, parent_id, path FROM tree WHERE id = 'F4.3'").fetchone()
        root = db.execute("SELECT parent_id, path FROM tree WHERE id = 'F1'").fetchone()
    assert sum(by_type.values()) == len(list(EDITED.walk(4)))
    assert priced == [("F2.1.1", 12)]
    assert moved == (2, "F1", '["F1","F4.3"]')
    assert root == (None, '["F1"]')


def test_start_from_without_db_writes_beside_the_old_one_named_by_the_time(
    tmp_path: Path,
) -> None:
    from resumer.cli.app import next_checkpoint

    old = tmp_path / "features.db"
    first = next_checkpoint(old, now=0.0)
    assert first.parent == tmp_path
    assert first.name.startswith("features-") and first.suffix == ".db"
    first.write_bytes(b"")
    second = next_checkpoint(old, now=0.0)  # the same second: never the same file
    assert second != first and second.name.startswith(first.stem)
    # From a checkpoint named so, the next one does not pile the times up.
    assert next_checkpoint(first, now=0.0).stem.count("-") == first.stem.count("-") + 1
    assert next_checkpoint(first, now=86_400.0).stem.count("-") == first.stem.count("-")
