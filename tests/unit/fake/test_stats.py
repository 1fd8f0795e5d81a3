"""What the fake API saw: requests counted in and out with the peak in flight, answers by
status, events kept only when asked, and the waits a test synchronises on instead of
sleeping (they return at once when met, and False when their timeout passes first)."""

from __future__ import annotations

import threading

from resumer.fake.stats import Stats


def test_requests_in_flight_and_their_peak() -> None:
    stats = Stats()
    assert [stats.arrived(), stats.arrived()] == [1, 2]
    stats.left()
    assert stats.arrived() == 2
    stats.left()
    stats.left()
    assert (stats.received, stats.in_flight, stats.max_in_flight) == (3, 0, 2)


def test_answers_are_counted_by_status_and_events_kept_only_when_asked() -> None:
    stats = Stats()
    stats.answered(1.0, "/features", 200)
    assert stats.events is None
    stats.keep_events()
    stats.arrived()
    stats.answered(2.0, "/children?id=F1", 429)
    stats.answered(3.0, "/children?id=F2", 0)  # dropped
    assert stats.statuses == {200: 1, 429: 1, 0: 1}
    assert stats.events == [(2.0, "/children?id=F1", 429), (3.0, "/children?id=F2", 0)]
    assert stats.concurrency == [1]


def test_calls_per_node_and_a_snapshot_that_does_not_move() -> None:
    stats = Stats()
    stats.record("F1")
    snapshot = stats.snapshot()
    stats.record("F1")
    stats.record("F2")
    assert snapshot == {"F1": 1}
    assert stats.calls == {"F1": 2, "F2": 1}


def test_wait_for_returns_at_once_when_met_and_false_when_it_times_out() -> None:
    stats = Stats()
    assert not stats.wait_for(1, timeout=0.0)
    stats.arrived()
    assert stats.wait_for(1, timeout=0.0)
    assert not stats.wait_until_idle(timeout=0.0)
    stats.left()
    assert stats.wait_until_idle(timeout=0.0)


def test_wait_for_wakes_when_another_thread_counts_the_request() -> None:
    stats = Stats()
    sender = threading.Thread(target=lambda: [stats.arrived() for _ in range(3)])
    sender.start()
    try:
        assert stats.wait_for(3, timeout=10.0)
    finally:
        sender.join()
    assert stats.received == 3
