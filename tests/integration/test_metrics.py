"""A Prometheus scrape during a run parses and carries the documented series."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from resumer import api
from resumer.fake.tree import FakeTree
from resumer.ops.monitoring import expressions
from tests.helpers import fake_api, write_job

TREE = FakeTree(seed=15, roots=8, fanout=(6, 5, 4))
SERIES = {
    "resumer_calls",
    "resumer_call_duration_seconds",
    "resumer_calls_in_flight",
    "resumer_concurrency_limit",
    "resumer_breaker_state",
    "resumer_nodes",
    "resumer_retries",
    "resumer_failures",
    "resumer_send_rate",
    "resumer_queries_done",
    "resumer_queries_estimated",
    "resumer_eta_seconds",
    "resumer_run_start_time_seconds",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_scrape_mid_run_has_the_documented_series_with_sane_values(tmp_path: Path) -> None:
    port = free_port()
    scraped: list[str] = []
    with fake_api(TREE, latency=0.02, broken=frozenset({"F2"})) as server:
        job = write_job(tmp_path, server.url)

        def scrape_mid_run() -> None:
            if server.stats.wait_for(TREE.query_count(4) // 2, timeout=60):
                scraped.append(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)

        scraper = threading.Thread(target=scrape_mid_run)
        scraper.start()
        outcome = api.run(job, tmp_path / "r.db", metrics_port=port)
        scraper.join(60)
    assert outcome.failed == 1
    (text,) = scraped
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) >= SERIES
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    ok_calls = sum(
        value
        for (name, labels), value in samples.items()
        if name == "resumer_calls_total" and ("code", "200") in labels
    )
    assert ok_calls >= TREE.query_count(4) // 2 - 20
    assert samples[("resumer_concurrency_limit", ())] == 8  # the job's http_concurrency
    assert 0 <= samples[("resumer_calls_in_flight", ())] <= 8
    assert samples[("resumer_breaker_state", (("resumer_breaker_state", "closed"),))] == 1
    complete = sum(
        value
        for (name, labels), value in samples.items()
        if name == "resumer_nodes" and ("status", "complete") in labels
    )
    assert complete > 0
    assert samples[("resumer_failures_total", (("level", "1"),))] == 1
    done, estimated = (
        samples[("resumer_queries_done", ())],
        samples[("resumer_queries_estimated", ())],
    )
    assert TREE.query_count(4) // 2 - 20 <= done <= estimated
    exported = {name for name, _ in samples}
    assert used_series() <= exported  # the dashboard and the rules ask only for these


def used_series() -> set[str]:
    """The series the dashboard's panels and the alerting rules query."""
    names = {name for expr in expressions() for name in re.findall(r"\bresumer_\w+", expr)}
    assert len(names) >= 12  # every family: the pattern finds them
    return names
