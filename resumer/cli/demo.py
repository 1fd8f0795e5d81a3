"""``resumer demo``: the fake API, a job file, a crawl and an export, in a temporary folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from rich.console import Console

from resumer import api
from resumer.fake.server import FakeAPI
from resumer.fake.tree import FakeTree
from resumer.results import ProgressFactory

DEMO_TREE = FakeTree(seed=42, roots=8, fanout=(6, 5, 4))
DEMO_LATENCY = 0.02  # seconds per answer, so the progress is visible

JOB_TEMPLATE = """\
# The demo's job file: the fake feature API on a free loopback port.
[source]
url = "{url}/features"

[request]
url = "{url}/children"
method = "GET"
params = {{ id = "{{id}}", name = "{{name}}", type = "{{type}}" }}
timeout = 10.0

[response]
items = "data.items"

[crawl]
max_depth = 4
http_concurrency = 16

[levels.1]
workers = 2
[levels.2]
workers = 6
[levels.3]
workers = 12
"""


def run_demo(console: Console, progress: ProgressFactory) -> int:
    """Crawl the demo tree end to end; return the run's exit status."""
    folder = Path(tempfile.mkdtemp(prefix="resumer-demo-"))
    job_file = folder / "job.toml"
    db = folder / "resumer.db"
    export_file = folder / "export.json"
    with FakeAPI(DEMO_TREE, latency=DEMO_LATENCY) as server:
        job_file.write_text(JOB_TEMPLATE.format(url=server.url), encoding="utf-8")
        queries = DEMO_TREE.query_count(4)
        console.print(f"fake feature API on {server.url}; crawling {queries} queries into {db}")
        outcome = api.run(job_file, db, progress=progress, handle_signals=True)
    if outcome.exit_status != 0:
        console.print(f"the demo crawl ended with status {outcome.exit_status}")
        return outcome.exit_status
    with export_file.open("w", encoding="utf-8") as handle:
        api.export_to(db, handle)
    exported = json.loads(export_file.read_text(encoding="utf-8"))
    verdict = "matches" if exported == DEMO_TREE.expected_export(4) else "DOES NOT match"
    console.print(f"export: {export_file} ({verdict} the fake API's tree)")
    console.print(f"job file: {job_file}; checkpoint: {db}")
    return 0 if verdict == "matches" else 1
