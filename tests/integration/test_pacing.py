"""Pacing against the fake API's rate limiter (nginx's limit_req nodelay), default job file."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pytest

from resumer import api
from resumer.checkpoint.store import Store
from resumer.fake.server import Faults
from resumer.fake.tree import FakeTree
from tests.helpers import fake_api, write_job

TREE = FakeTree(seed=21, roots=8, fanout=(8, 8, 4), even=True)  # 584 queries
RATE = 400.0  # calls a second the fake API allows


def throttled_share(statuses: dict[int, int]) -> float:
    calls = sum(statuses.values())
    return (statuses.get(429, 0) + statuses.get(503, 0)) / calls


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, 1.0), (429, None), (503, None)],
    ids=["429+Retry-After", "429", "503"],
)
def test_a_default_job_finds_the_limit_and_completes_with_few_refusals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int, retry_after: float | None
) -> None:
    faults = Faults(
        rate_limit=RATE, burst=10, throttle_status=status, limit_retry_after=retry_after
    )
    with fake_api(TREE, faults=faults) as server:
        job = write_job(tmp_path, server.url)
        with caplog.at_level(logging.INFO, logger="resumer"):
            outcome = api.run(job, tmp_path / "r.db")
        statuses = dict(server.stats.statuses)
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert statuses.get(status, 0) > 0  # the limit was met ...
    assert throttled_share(statuses) <= 0.10  # ... and kept to
    assert not any("breaker open" in message for message in caplog.messages)
    assert any("send rate" in message for message in caplog.messages)


def test_rate_limit_headers_pace_ahead_of_time(tmp_path: Path) -> None:
    faults = Faults(rate_limit=RATE, burst=10, rate_headers="ratelimit")
    with fake_api(TREE, faults=faults) as server:
        job = write_job(tmp_path, server.url)
        outcome = api.run(job, tmp_path / "r.db")
        statuses = dict(server.stats.statuses)
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert throttled_share(statuses) <= 0.02


def test_adaptive_false_keeps_the_fixed_bucket(tmp_path: Path) -> None:
    faults = Faults(rate_limit=RATE, burst=10, limit_retry_after=None)
    with fake_api(TREE, faults=faults) as server:
        job = write_job(tmp_path, server.url, extra="[rate]\nper_second = 100\nadaptive = false\n")
        outcome = api.run(job, tmp_path / "r.db")
        statuses = dict(server.stats.statuses)
    assert outcome.exit_status == 0
    assert statuses.get(429, 0) == 0  # 100/s is under the server's 200/s: never refused


def test_the_checkpoint_records_the_send_rate_and_why_for_status(tmp_path: Path) -> None:
    faults = Faults(rate_limit=RATE, burst=10)
    with fake_api(TREE, faults=faults, latency=0.002) as server:
        job = write_job(tmp_path, server.url)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
    store = Store.open(tmp_path / "r.db", migrate=False)
    health = store.health()
    store.close()
    assert health.send_rate is not None and 0 < health.send_rate <= 2 * RATE
    assert health.send_rate_reason
    assert api.status(tmp_path / "r.db").send_rate is None  # not running: nothing limits


def test_metrics_expose_resumer_send_rate() -> None:
    from resumer.ops.metrics import Metrics

    metrics = Metrics(
        counts=dict,
        in_flight=lambda: 0,
        limit=lambda: 1,
        breaker=lambda: "closed",
        send_rate=lambda: 42.5,
    )
    metrics.serve(0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics") as answer:
            text = answer.read().decode()
    finally:
        metrics.close()
    assert "resumer_send_rate 42.5" in text
