"""``query.answers``: what an HTTP error status means for the policies.

A throttle slows the send rate and never fails a node; a failure is retried and
counted by the breaker; a permanent error fails the node at once.
"""

from __future__ import annotations

import pytest

from resumer.job.settings import DEFAULT_RETRY_ON
from resumer.query.answers import FAILURE, PERMANENT, THROTTLE, kind_of_status


def never() -> bool:
    return False


def always() -> bool:
    return True


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, THROTTLE),
        (425, THROTTLE),
        (408, FAILURE),
        (500, FAILURE),
        (502, FAILURE),
        (504, FAILURE),
        (503, FAILURE),  # nothing else answering: an outage
        (400, PERMANENT),
        (403, PERMANENT),
        (404, PERMANENT),
        (501, PERMANENT),  # not in retry_on
    ],
)
def test_each_status_counts_as_the_default_retry_on_says(status: int, kind: str) -> None:
    assert kind_of_status(status, None, DEFAULT_RETRY_ON, never) == kind


def test_a_503_is_a_throttle_when_it_says_when_to_come_back() -> None:
    assert kind_of_status(503, 2.0, DEFAULT_RETRY_ON, never) == THROTTLE


def test_a_503_is_a_throttle_while_the_server_still_serves_other_calls() -> None:
    assert kind_of_status(503, None, DEFAULT_RETRY_ON, always) == THROTTLE


def test_load_shedding_is_asked_only_about_a_503() -> None:
    asked: list[int] = []

    def sheds_load() -> bool:
        asked.append(1)
        return True

    for status in (429, 500, 404):
        kind_of_status(status, None, DEFAULT_RETRY_ON, sheds_load)
    assert asked == []


def test_a_status_left_out_of_retry_on_is_permanent_even_a_throttle() -> None:
    assert kind_of_status(429, 5.0, (500,), always) == PERMANENT
    assert kind_of_status(500, None, (500,), never) == FAILURE


def test_another_status_in_retry_on_below_500_is_a_throttle() -> None:
    assert kind_of_status(409, None, (409,), never) == THROTTLE
