"""`resumer probe`: a few queries per level, nothing stored; the hint when mapping fails."""

from __future__ import annotations

from pathlib import Path

from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, resumer

TREE = FakeTree(seed=19, roots=5, fanout=(4, 4, 3), even=True)


def init_for(folder: Path, url: str) -> Path:
    assert resumer("init", "job.toml", cwd=folder).returncode == 0
    job = folder / "job.toml"
    job.write_text(job.read_text().replace("http://127.0.0.1:8808", url))
    return job


def test_init_then_probe_succeeds_and_stores_nothing(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = init_for(tmp_path, server.url)
        done = resumer("probe", job, "--per-level", "2", cwd=tmp_path)
        calls = sum(server.stats.snapshot().values())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "level 4: 6 item(s) mapped by querying level 3" in done.stdout.replace("\n", " ")
    assert "F1.1.1 / Feature 1.1.1" in done.stdout
    assert calls == 2 + 2 + 2  # two nodes per queried level
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]


def test_a_wrong_items_path_exits_1_with_the_hint(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = init_for(tmp_path, server.url)
        job.write_text(job.read_text().replace('items = "data.items"', 'items = "data.list"'))
        done = resumer("probe", job, cwd=tmp_path)
    assert done.returncode == 1
    hint = "level 1: items path 'data.list' not found: 'data' has no 'list' (it has: items)"
    assert hint in done.stderr


def test_secrets_never_appear_in_the_probe(tmp_path: Path) -> None:
    with fake_api(TREE) as server:
        job = init_for(tmp_path, server.url)
        text = job.read_text().replace(
            '# headers = { Authorization = "Bearer ${FEATURE_API_TOKEN}" }',
            'headers = { Authorization = "Bearer ${FEATURE_API_TOKEN}" }\n'
            'params = { id = "{id}", name = "{name}", type = "{type}",'
            ' key = "${FEATURE_API_TOKEN}" }',
        )
        job.write_text(text)
        done = resumer("probe", job, cwd=tmp_path, env={"FEATURE_API_TOKEN": "s3cr3t-tok"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "key=***" in done.stdout.replace("\n", "")
    assert "s3cr3t" not in done.stdout + done.stderr


def test_probe_marks_leaves_and_drops_by_rule_and_does_not_query_them(tmp_path: Path) -> None:
    tree = FakeTree(seed=19, roots=6, fanout=(4, 4, 3), has_children=True, childless=0.5)
    rules = (
        '\n[[crawl.leaf]]\nfield = "hasChildren"\nin = [false]\n'
        '\n[[crawl.drop]]\nfield = "type"\nin = ["beta"]\n'
    )
    with fake_api(tree) as server:
        job = init_for(tmp_path, server.url)
        job.write_text(job.read_text() + rules)
        done = resumer("probe", job, "--per-level", "2", cwd=tmp_path, env={"COLUMNS": "300"})
        asked = server.stats.snapshot()
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout.replace("\n", " ")
    roots = tree.root_items()
    first_leaf = next(r for r in roots if not r["hasChildren"] and r["type"] != "beta")
    assert (
        f"{first_leaf['id']} / {first_leaf['name']} / {first_leaf['type']} [leaf: crawl.leaf 1]"
        in " ".join(shown.split())
    )
    assert "leaf by rule" in shown
    wanted = [r["id"] for r in roots if r["hasChildren"] and r["type"] != "beta"][:2]
    assert all(asked[node] == 1 for node in wanted)
    assert all(not asked[r["id"]] for r in roots if not r["hasChildren"] or r["type"] == "beta")
