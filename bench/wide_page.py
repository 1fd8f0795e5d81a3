"""Benchmark: one wide page, a node answered with 300,000 children in one answer, on each
engine: the crawl's wall time and peak RSS, next to a crawl of the same number of nodes
in ordinary pages (the usual figure).

    python bench/wide_page.py                # 300,000 children (about 27 MB of JSON)
    python bench/wide_page.py --items 50000  # a smaller page, to try things

The fake API (``resumer fake-api --roots 1 --fanout N --even``) serves the page; the
crawl is ``resumer start`` with ``max_depth = 2`` (the root's query is the only one),
each as a process of its own, its peak RSS from ``wait4``. The usual figure: the same
number of nodes as 1,000 pages (``--roots 1000 --fanout N/1000``). Each crawl's
export is compared with the fake API's tree, node for node.

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
import urllib.request
from pathlib import Path

from resumer.fake.tree import FakeTree

JOB = """\
[source]
url = "{url}/features"
[request]
url = "{url}/children"
engine = "{engine}"
timeout = 120
[response]
items = "data.items"
[crawl]
max_depth = 2
"""


RESUMER = [sys.executable, "-m", "resumer"]
FAKE_API = [*RESUMER, "fake-api", "--port", "0", "--even"]


def fake_api(roots: int, fanout: int) -> tuple[subprocess.Popen[str], str]:
    """The fake API serving ``roots`` roots of ``fanout`` children each; its URL."""
    process = subprocess.Popen(
        [*FAKE_API, "--roots", str(roots), "--fanout", str(fanout)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
    return process, url


def crawl(folder: Path, url: str, engine: str) -> tuple[float, float, int, Path]:
    """(wall s, peak RSS MB, exit status, checkpoint) of one crawl into a new checkpoint."""
    job = folder / f"{engine}.toml"
    job.write_text(JOB.format(url=url, engine=engine), encoding="utf-8")
    db = folder / f"{engine}-{time.monotonic_ns()}.db"
    began = time.perf_counter()
    process = subprocess.Popen(
        [*RESUMER, "start", str(job), "--db", str(db), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall, peak = time.perf_counter() - began, usage.ru_maxrss / 1024
    return wall, peak, os.waitstatus_to_exitcode(status), db


def export_is_the_tree(db: Path, roots: int, fanout: int) -> bool:
    """Whether ``resumer export`` of the crawl is the fake API's tree, node for node."""
    done = subprocess.run(
        [*RESUMER, "export", "--db", str(db)], capture_output=True, text=True, check=True
    )
    tree = FakeTree(roots=roots, fanout=(fanout,), even=True)
    return bool(json.loads(done.stdout) == tree.expected_export(max_depth=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300_000, help="children in the page")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="resumer-bench-wide-"))
    rows = []
    for name, roots, fanout in (
        (f"one page of {args.items:,}", 1, args.items),
        (f"{args.items:,} in 1,000 pages", 1000, args.items // 1000),
    ):
        server, url = fake_api(roots, fanout)
        try:
            with urllib.request.urlopen(f"{url}/children?id=F1", timeout=120) as answer:
                size = len(answer.read())  # also warms the fake API's answer up
            for engine in ("curl", "httpx"):
                rows.append((f"{name} (a page: {size / 1e6:.1f} MB)", engine, roots, fanout,
                             *crawl(folder, url, engine)))  # fmt: skip
        finally:
            server.terminate()
            server.wait()
    # Compared once every crawl is timed: a crawl forked from this process, grown by a
    # comparison, would start its peak RSS at this process's size.
    print("| crawl | engine | wall s | peak RSS MB | exit | export == tree |")
    print("|---|---|---|---|---|---|")
    for name, engine, roots, fanout, wall, peak, status, db in rows:
        same = "yes" if export_is_the_tree(db, roots, fanout) else "NO"
        print(f"| {name} | {engine} | {wall:.1f} | {peak:.0f} | {status} | {same} |")


if __name__ == "__main__":
    main()
