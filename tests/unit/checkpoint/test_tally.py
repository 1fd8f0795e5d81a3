"""The live tally of nodes per level and status: moves applied to it (the job's own row at
level 0 never counted), copies handed out so no caller can change it, and counts gathered
from (level, status, n) rows with every status present."""

from __future__ import annotations

from collections import Counter

from resumer.checkpoint.tally import Counts, Tally, gather

ZERO = {"pending": 0, "running": 0, "waiting": 0, "complete": 0, "failed": 0}
ZERO.update(leaf_by_rule=0, dropped=0)  # counted beside the statuses


def test_moves_add_and_take_away_and_open_a_new_level() -> None:
    tally = Tally({1: {**ZERO, "pending": 2, "running": 1}})
    tally.apply(Counter({(1, "running"): -1, (1, "complete"): 1, (2, "pending"): 4}))
    assert tally.counts() == {
        1: {**ZERO, "pending": 2, "complete": 1},
        2: {**ZERO, "pending": 4},
    }


def test_the_jobs_own_row_and_empty_moves_are_not_counted() -> None:
    tally = Tally({1: dict(ZERO)})
    tally.apply(Counter({(0, "complete"): 1, (3, "failed"): 0}))
    assert tally.counts() == {1: ZERO}


def test_the_tally_is_its_own_and_hands_out_copies_by_level() -> None:
    start: Counts = {3: dict(ZERO), 1: {**ZERO, "failed": 1}}
    tally = Tally(start)
    start[1]["failed"] = 99  # the caller's dict is not the tally's
    handed = tally.counts()
    handed[1]["failed"] = 42  # nor is the copy handed out
    assert list(tally.counts()) == [1, 3]
    assert tally.counts()[1]["failed"] == 1


def test_gather_fills_in_every_status_of_each_level() -> None:
    rows = [(1, "pending", 2), (2, "failed", 1), (1, "complete", 5)]
    assert gather(rows) == {1: {**ZERO, "pending": 2, "complete": 5}, 2: {**ZERO, "failed": 1}}
    assert gather([]) == {}
