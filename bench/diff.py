"""Benchmark: ``resumer diff`` of two large crawls, next to ``resumer export`` of one.

    python bench/diff.py                 # two checkpoints of 1,010,110 nodes (10 x 10 x 100 x 100)
    python bench/diff.py --roots 2       # a smaller pair, to try things
    python bench/diff.py --keep DIR      # keep the checkpoints (built once, reused)

The two checkpoints are built with the library (no HTTP: the figures are the diff's
and the export's), the second with known edits: 100 nodes renamed, 100 payloads
changed, one level-2 subtree removed, one added and one moved. Then, each as a
process of its own: ``resumer export --db old.db -o /dev/null`` and ``resumer diff
old.db new.db --json > /dev/null``, with their wall time and peak RSS. The goal: the
diff within twice the export's time, at 150 MB peak or less.

Figures, not assertions: this is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from resumer.checkpoint.store import Store  # noqa: E402
from resumer.model import Children, Item  # noqa: E402

FANOUT = (10, 100, 100)  # children per node of levels 1, 2, 3 (the leaf level is 4)
LEAF = 4


def item(node_id: str, edits: dict[str, str]) -> Item:
    payload = {"id": node_id, "name": f"Feature {node_id}", "rank": len(node_id)}
    if edits.get(node_id) == "payload":
        payload["rank"] = -1
    name = "renamed" if edits.get(node_id) == "name" else payload["name"]
    return Item(node_id, str(name), "core", json.dumps(payload, separators=(",", ":")))


def children(node_id: str, level: int, edits: dict[str, str]) -> list[str]:
    """A node's children's ids: ``edits`` removes ("removed"), adds and moves ("under
    PARENT": a new node, or one moved there from its own parent)."""
    ids = [f"{node_id}.{i}" for i in range(1, FANOUT[level - 1] + 1)]
    ids = [i for i in ids if edits.get(i, "") == "" or edits[i] in ("name", "payload")]
    ids += [i for i, what in edits.items() if what == f"under {node_id}"]
    return ids


def build(path: Path, roots: int, edits: dict[str, str]) -> int:
    """A finished checkpoint of the tree (with ``edits``); its number of nodes."""
    store = Store.create(path, "[source]\nfile = 'r.csv'\n", "job.toml", str(path.parent))
    try:
        (source,) = store.claim(0, 1)
        ids = [f"F{i}" for i in range(1, roots + 1)]
        store.save([Children(source.node, 0, [item(i, edits) for i in ids], 1)], LEAF)
        nodes = len(ids)
        for level in range(1, LEAF):
            while tasks := store.claim(level, 2_000):
                results = []
                for task in tasks:
                    found = [item(i, edits) for i in children(task.id, level, edits)]
                    nodes += len(found)
                    results.append(Children(task.node, level, found, 1))
                store.save(results, LEAF)
        return nodes
    finally:
        store.close()


# 100 nodes renamed, 100 payloads changed, a level-2 subtree removed, one moved, one added.
EDITS = {f"F1.{i}.{j}": "name" for i in range(1, 11) for j in range(1, 11)}
EDITS |= {f"F2.{i}.{j}.1": "payload" for i in range(1, 11) for j in range(1, 11)}
EDITS |= {"F3.1": "removed", "F4.2": "under F1", "F1.1.999": "under F1.1"}


def timed(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of ``command``, its output discarded."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - began, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=10, help="level-1 nodes (default 10)")
    parser.add_argument("--keep", type=Path, help="build the checkpoints here, and reuse them")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # one, in a child
    parser.add_argument("--edited", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        began = time.perf_counter()
        count = build(args.build, args.roots, EDITS if args.edited else {})
        print(f"built {args.build.name}: {count:,} nodes in {time.perf_counter() - began:.0f} s")
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="resumer-bench-diff-"))
    folder.mkdir(parents=True, exist_ok=True)
    old, new = folder / f"old-{args.roots}.db", folder / f"new-{args.roots}.db"
    for path, edited in ((old, []), (new, ["--edited"])):
        if not path.exists():
            # In a process of its own: a child forked from a big parent would report the
            # parent's peak RSS as its own.
            build_one = [sys.executable, __file__, "--roots", str(args.roots), "--build", str(path)]
            subprocess.run([*build_one, *edited], check=True)
    command = [sys.executable, "-m", "resumer"]
    export = timed([*command, "export", "--db", str(old), "-o", os.devnull], folder)
    diff = timed([*command, "diff", str(old), str(new), "--json"], folder)
    print()
    print("| command | wall s | peak RSS MB | exit |")
    print("|---|---|---|---|")
    print(f"| export of one | {export[0]:.1f} | {export[1]:.0f} | {export[2]} |")
    print(f"| diff --json of two | {diff[0]:.1f} | {diff[1]:.0f} | {diff[2]} |")
    print(f"\ndiff / export: {diff[0] / export[0]:.2f} (goal <= 2), peak {diff[1]:.0f} MB (<= 150)")


if __name__ == "__main__":
    main()
