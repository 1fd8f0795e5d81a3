"""``resumer demo``, in-process on a small tree: its job file is a valid job for the fake API,
and one run starts the fake API on 127.0.0.1, crawls it, exports, says the export matches the
tree and leaves the job file, the checkpoint and the export in its own temporary folder."""

from __future__ import annotations

import io
import json
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from resumer.cli import demo
from resumer.fake.tree import FakeTree
from resumer.job.loader import parse_job
from resumer.results import no_progress


@pytest.fixture
def handlers_restored() -> Iterator[None]:
    """The demo installs SIGINT and SIGTERM handlers (as the CLI does): put pytest's back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_the_demo_job_file_is_a_valid_job() -> None:
    job = parse_job(demo.JOB_TEMPLATE.format(url="http://127.0.0.1:8808"), "job.toml")
    assert job.request.url == "http://127.0.0.1:8808/children"
    assert dict(job.request.params) == {"id": "{id}", "name": "{name}", "type": "{type}"}
    assert job.crawl.max_depth == 4
    assert [job.level(n).workers for n in job.queried_levels] == [2, 6, 12]


@pytest.mark.usefixtures("handlers_restored")
def test_the_demo_crawls_the_fake_api_and_its_export_matches_the_tree(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(demo, "DEMO_TREE", FakeTree(seed=3, roots=2, fanout=(2, 2, 2), even=True))
    monkeypatch.setattr(demo, "DEMO_LATENCY", 0.0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shown = io.StringIO()

    assert demo.run_demo(Console(file=shown, width=1000), no_progress) == 0

    assert "crawling 14 queries" in shown.getvalue()  # 2 + 4 + 8 nodes above the leaves
    assert "(matches the fake API's tree)" in shown.getvalue()
    (folder,) = tmp_path.glob("resumer-demo-*")
    assert {"job.toml", "resumer.db", "export.json"} <= {p.name for p in folder.iterdir()}
    export = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert [root["id"] for root in export] == ["F1", "F2"]
    assert [leaf["id"] for leaf in export[1]["children"][0]["children"][1]["children"]] == [
        "F2.1.2.1",
        "F2.1.2.2",
    ]
