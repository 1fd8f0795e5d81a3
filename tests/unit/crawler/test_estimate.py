"""The estimate of work left: the frontier times the fan-out seen so far."""

from __future__ import annotations

import pytest

from resumer.crawler.estimate import (
    Window,
    eta_seconds,
    fan_out,
    queries_done,
    remaining_queries,
)


def counts(**by_status: int) -> dict[str, int]:
    return {"pending": 0, "running": 0, "waiting": 0, "complete": 0, "failed": 0, **by_status}


def test_unqueried_nodes_bring_their_expected_subtrees() -> None:
    levels = {
        1: counts(waiting=2, pending=2),  # 2 queried roots had 10 children: fan-out 5
        2: counts(complete=4, pending=6),  # 4 queried had 20 children: fan-out 5
        3: counts(complete=20),
        4: counts(complete=100),
    }
    assert fan_out(levels, 1) == 5.0
    assert fan_out(levels, 2) == 5.0
    # 2 roots left; 6 + 2*5 level-2 nodes left; their 16*5 = 80 level-3 nodes.
    assert remaining_queries(levels, max_depth=4) == pytest.approx(2 + 16 + 80)


def test_a_finished_job_has_nothing_left() -> None:
    levels = {1: counts(complete=3), 2: counts(complete=9)}
    assert remaining_queries(levels, max_depth=2) == 0
    assert eta_seconds(0, None) == 0.0


def test_no_rate_means_no_eta() -> None:
    assert eta_seconds(100, None) is None
    assert eta_seconds(100, 0.0) is None
    assert eta_seconds(100, 20.0) == 5.0


def test_a_window_measures_each_counter_over_its_last_seconds_only() -> None:
    window = Window(10.0)
    assert window.rates(0.0, {1: 0, 2: 0}) is None  # no time has passed yet
    assert window.rates(5.0, {1: 50, 2: 5}) == {1: 10.0, 2: 1.0}
    window.rates(10.0, {1: 100, 2: 10})
    # at 20 s the samples at 0 and 5 s are older than 10 s: the rate is from 10 s on
    assert window.rates(20.0, {1: 300, 2: 10}) == {1: 20.0, 2: 0.0}


def test_leaves_by_rule_are_neither_queried_nor_expected_to_be() -> None:
    # Level 2: 10 nodes, 4 of them leaves by rule (complete, never queried); the 4 that
    # were queried brought 20 children (fan-out 5, not 20 / 8).
    levels = {
        1: counts(waiting=2, pending=1),  # fan-out 5: the pending root brings 5 more
        2: {**counts(complete=6, pending=2, waiting=2), "leaf_by_rule": 4},
        3: counts(complete=20),
    }
    assert fan_out(levels, 2) == 5.0
    # Level 1: 1 left. Level 2: 2 pending + 5 expected, of which 40% leaves by rule: 3.
    # Level 3: (2 + 3) * 5 = 25.
    assert remaining_queries(levels, max_depth=4) == pytest.approx(1 + 5 + 25)
    assert queries_done(levels, max_depth=4) == 2 + (8 - 4) + 20


def test_dropped_items_are_not_nodes_of_any_level() -> None:
    levels = {1: counts(waiting=2), 2: {**counts(pending=10), "dropped": 30}}
    assert fan_out(levels, 1) == 5.0
    assert remaining_queries(levels, max_depth=3) == 10
