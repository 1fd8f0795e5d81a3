"""Resilience against the fake API's faults, in-process, with short (millisecond) settings."""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from resumer import api
from resumer.checkpoint.store import Store
from resumer.fake.server import Faults
from resumer.fake.tree import FakeTree
from tests.helpers import export_json, fake_api, resumer, write_job

TREE = FakeTree(seed=8, roots=8, fanout=(6, 5, 4))  # about 300 queries

FAST_RETRY = (
    "[retry]\nattempts = 12\ninitial = 0.01\nmax = 0.1\n"
    "[breaker]\nfailure_threshold = 8\nreset_timeout = 0.05\n"
)


# The fake API's --throttle-rate refuses a share of calls at random, whatever the rate: no
# send rate makes those refusals stop, so these tests use the fixed bucket (README, "How
# pacing works").
AT_RANDOM = "[rate]\nadaptive = false\n"


def crawl_section(concurrency: int = 8, extra: str = "") -> str:
    return f"[crawl]\nmax_depth = 4\nhttp_concurrency = {concurrency}\ngrace = 5.0\n{extra}"


def exported(db: Path) -> Any:
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


def node_ids(target: str) -> str:
    return target.split("id=", 1)[1].split("&", 1)[0] if "id=" in target else target


def test_a_mix_of_faults_still_gives_the_whole_tree_once(tmp_path: Path) -> None:
    faults = Faults(
        error_rate=0.05,
        throttle_rate=0.05,
        slow_rate=0.02,
        drop_rate=0.02,
        retry_after=0.02,
        slow_delay=0.5,
    )
    with fake_api(TREE, faults=faults) as server:
        request = f'[request]\nurl = "{server.url}/children"\ntimeout = 0.2\n'
        job = write_job(tmp_path, server.url, request=request, extra=FAST_RETRY + AT_RANDOM)
        outcome = api.run(job, tmp_path / "r.db")
        assert server.stats.wait_until_idle(timeout=10)  # the slow answers are counted
        statuses = server.stats.statuses
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert exported(tmp_path / "r.db") == TREE.expected_export(4)
    assert statuses[500] and statuses[429] and statuses[504] and statuses[0]  # every fault met


def test_an_outage_opens_the_breaker_fails_nothing_and_calls_only_probes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outage, threshold, reset, concurrency = (0.3, 1.8), 3, 0.25, 4
    with fake_api(TREE, latency=0.01, faults=Faults(outage=outage)) as server:
        server.stats.keep_events()
        extra = (
            "[retry]\nattempts = 3\ninitial = 0.01\nmax = 0.05\n"
            f"[breaker]\nfailure_threshold = {threshold}\nreset_timeout = {reset}\n"
        )
        job = write_job(tmp_path, server.url, crawl=crawl_section(concurrency), extra=extra)
        with caplog.at_level(logging.WARNING, logger="resumer"):
            outcome = api.run(job, tmp_path / "r.db")
        events = list(server.stats.events or [])
    assert (outcome.exit_status, outcome.failed) == (0, 0)
    assert exported(tmp_path / "r.db") == TREE.expected_export(4)
    assert any("breaker open" in message for message in caplog.messages)
    assert any("breaker closed" in message for message in caplog.messages)
    during = sum(1 for _, _, status in events if status == 503)
    probes = math.ceil((outage[1] - outage[0]) / reset) + 1
    # Each call in flight may take an outage's first 503s for load shed (a throttle: retried,
    # not counted by the breaker) until calls have failed for a few successes' time: at
    # worst all of its attempts, and the first call after its node is released and claimed
    # again. Without the breaker this outage would take hundreds.
    attempts = 3
    shed = concurrency * (attempts + 1)
    assert 0 < during <= concurrency + shed + threshold + probes


def test_the_rate_limit_holds_in_every_second_after_the_burst(tmp_path: Path) -> None:
    tree = FakeTree(seed=9, roots=5, fanout=(5, 3, 1), even=True)  # 96 queries
    with fake_api(tree) as server:
        server.stats.keep_events()
        job = write_job(tmp_path, server.url, extra="[rate]\nper_second = 50\nburst = 5\n")
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        times = sorted(t for t, _, _ in server.stats.events or [])
    assert len(times) == 1 + 5 + 25 + 75
    steady = times[5:]
    busiest = max(sum(1 for t in steady[i:] if t < start + 1.0) for i, start in enumerate(steady))
    assert busiest <= 55


@pytest.mark.slow  # the server's arrival times, on the wall clock, with 2 ms of slack
def test_no_call_for_a_node_before_its_retry_after(tmp_path: Path) -> None:
    retry_after = 0.1
    with fake_api(TREE, faults=Faults(throttle_rate=0.1, retry_after=retry_after)) as server:
        server.stats.keep_events()
        retry = "[retry]\nattempts = 12\ninitial = 0.01\nmax = 1.0\n"  # max caps Retry-After
        job = write_job(tmp_path, server.url, extra=retry + AT_RANDOM)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        events = list(server.stats.events or [])
    calls: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for arrived, target, status in events:
        calls[node_ids(target)].append((arrived, status))
    throttled = 0
    for history in calls.values():
        history.sort()
        for (when, status), (later, _) in itertools.pairwise(history):
            if status == 429:
                throttled += 1
                assert later >= when + retry_after - 0.002
    assert throttled > 5


def overloaded_crawl(
    folder: Path, k: int, crawl: str, rate: str = ""
) -> tuple[list[int], list[int], int | None]:
    """Crawl a server that refuses more than ``k`` calls at once: (statuses, calls in
    flight at each arrival, the in-flight limit at the end)."""
    tree = FakeTree(seed=10, roots=10, fanout=(6, 8, 2))
    levels = "[levels.1]\nworkers = 4\n[levels.2]\nworkers = 16\n[levels.3]\nworkers = 32\n"
    with fake_api(tree, latency=0.02, faults=Faults(max_inflight=k)) as server:
        server.stats.keep_events()
        job = write_job(folder, server.url, crawl=crawl, levels=levels, extra=FAST_RETRY + rate)
        assert api.run(job, folder / "r.db").exit_status == 0
        statuses = [status for _, _, status in server.stats.events or []]
        concurrency = list(server.stats.concurrency or [])
    store = Store.open(folder / "r.db", migrate=False)
    limit = store.health().limit
    store.close()
    return statuses, concurrency, limit


def test_adaptive_concurrency_settles_under_the_servers_limit(tmp_path: Path) -> None:
    k = 6
    (tmp_path / "fixed").mkdir()
    (tmp_path / "adaptive").mkdir()
    _, fixed, _ = overloaded_crawl(tmp_path / "fixed", k, crawl_section(k))
    statuses, concurrency, limit = overloaded_crawl(
        tmp_path / "adaptive",
        k,
        crawl_section(32, "adaptive = true\nmin_concurrency = 1\n"),
        rate="[rate]\nadaptive = false\n",  # the in-flight limit alone, not the send rate
    )
    settled = len(statuses) // 3
    late = statuses[settled:]
    assert late.count(429) < 0.01 * len(late)
    assert limit is not None and k - 2 <= limit <= k + 1
    # At a fixed latency, throughput follows the calls in flight: compare those.
    adaptive_mean = sum(concurrency[settled:]) / len(concurrency[settled:])
    fixed_mean = sum(fixed[settled:]) / len(fixed[settled:])
    assert adaptive_mean >= 0.8 * fixed_mean


@pytest.mark.parametrize(
    "pagination",
    [
        '[response.pagination]\nmode = "page"\nsize = 2\n',
        '[response.pagination]\nmode = "cursor"\ncursor_path = "data.next"\nsize = 2\n',
    ],
)
def test_pages_with_failures_on_middle_pages_store_children_once_in_order(
    tmp_path: Path, pagination: str
) -> None:
    with fake_api(TREE, faults=Faults(page_size=2, error_rate=0.2)) as server:
        server.stats.keep_events()
        response = f'[response]\nitems = "data.items"\n{pagination}'
        job = write_job(tmp_path, server.url, response=response, extra=FAST_RETRY)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        events = list(server.stats.events or [])
    assert exported(tmp_path / "r.db") == TREE.expected_export(4)
    middle = [t for _, t, status in events if status == 500 and ("page=2" in t or "cursor=c2" in t)]
    assert middle  # some query failed after its first page, and came out whole anyway
    with sqlite3.connect(tmp_path / "r.db") as db:
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT parent_id, item_id FROM nodes"
            " GROUP BY parent_id, item_id HAVING count(*) > 1)"
        ).fetchone()
    assert duplicates == (0,)


def test_retry_failed_turns_a_failed_job_into_a_complete_one(tmp_path: Path) -> None:
    broken: list[str] = []  # one node of each queried level, each in a tree of its own
    for level, item in TREE.walk(3):
        tree_of = item["id"].split(".")[0]
        if level == len(broken) + 1 and all(b.split(".")[0] != tree_of for b in broken):
            broken.append(item["id"])
    with fake_api(TREE, broken=frozenset(broken)) as server:
        job = write_job(tmp_path, server.url)
        first = resumer("start", job, "--db", "r.db", cwd=tmp_path)
        listed = resumer("failed", "--db", "r.db", "--json", cwd=tmp_path)
        table = resumer("failed", "--db", "r.db", cwd=tmp_path)
        server.broken = frozenset()  # the server is healthy again
        again = resumer("resume", "--db", "r.db", "--retry-failed", cwd=tmp_path)
    assert first.returncode == 1
    assert "resumer resume --db r.db --retry-failed" in first.stderr
    failed = json.loads(listed.stdout)
    assert [(f["level"], f["id"]) for f in failed] == list(zip((1, 2, 3), broken, strict=True))
    assert set(failed[0]) == {"level", "id", "name", "type", "attempts", "error"}
    assert failed[0]["attempts"] == 1  # a permanent failure is not retried
    assert "HTTP 400" in failed[0]["error"]
    assert broken[2] in table.stdout
    assert again.returncode == 0, again.stderr
    assert export_json(tmp_path / "r.db", tmp_path) == TREE.expected_export(4)
