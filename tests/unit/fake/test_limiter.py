"""The fake API's rate limit: nginx's limit_req nodelay bucket, its headers, /_rate."""

from __future__ import annotations

import httpx
import pytest

from resumer.fake.limiter import LeakyBucket, WindowLimiter, parse_limiter, rate_limit_headers
from resumer.fake.server import FakeAPI, Faults
from resumer.fake.tree import FakeTree

EPOCH = 1_700_000_000.5  # a Unix time for the X-RateLimit-Reset header


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bucket_at(rate: float, burst: int) -> tuple[LeakyBucket, FakeClock]:
    clock = FakeClock()
    return LeakyBucket(rate, burst, clock=clock), clock


def takes(bucket: LeakyBucket, calls: int) -> list[bool]:
    return [bucket.take().accepted for _ in range(calls)]


# -- the bucket ---------------------------------------------------------------


def test_an_empty_bucket_takes_burst_plus_one_at_once_then_refuses() -> None:
    bucket, _clock = bucket_at(rate=4.0, burst=10)

    assert takes(bucket, 13) == [True] * 11 + [False, False]
    assert bucket.excess == 10.0


def test_after_one_over_rate_seconds_it_takes_exactly_one_more() -> None:
    bucket, clock = bucket_at(rate=4.0, burst=10)
    takes(bucket, 11)

    clock.advance(0.25)  # 1 / rate
    assert takes(bucket, 2) == [True, False]
    clock.advance(0.25)
    assert takes(bucket, 2) == [True, False]


def test_the_first_call_leaves_the_bucket_empty() -> None:
    bucket, clock = bucket_at(rate=4.0, burst=10)

    decision = bucket.take()

    assert decision.accepted
    assert (bucket.excess, bucket.last) == (0.0, clock.now)


def test_a_refused_call_changes_nothing() -> None:
    bucket, clock = bucket_at(rate=4.0, burst=2)
    takes(bucket, 3)  # full: excess 2
    clock.advance(0.125)
    before = (bucket.excess, bucket.last)

    decision = bucket.take()  # 2 - 4 * 0.125 + 1 = 2.5 > 2

    assert not decision.accepted
    assert decision.excess == 1.5  # the bucket as it is now: 2 - 0.5, this call not counted
    assert (bucket.excess, bucket.last) == before
    clock.advance(0.125)  # refusals did not push the next slot back
    assert bucket.take().accepted


def test_a_drained_bucket_takes_the_whole_burst_again() -> None:
    # nginx: excess = max(0, excess - rate * elapsed + 1), the +1 before the floor
    bucket, clock = bucket_at(rate=4.0, burst=10)
    takes(bucket, 11)
    clock.advance(60.0)

    assert bucket.take().excess == 0.0
    assert takes(bucket, 11) == [True] * 10 + [False]


def test_set_rate_keeps_what_the_bucket_holds() -> None:
    bucket, clock = bucket_at(rate=1.0, burst=10)
    takes(bucket, 5)  # excess 4 at t
    clock.advance(1.0)

    bucket.set_rate(2.0)  # leaked at 1/s until now: 3
    assert bucket.excess == 3.0
    clock.advance(0.5)
    decision = bucket.take()  # 3 - 2 * 0.5 + 1

    assert (decision.accepted, decision.excess, decision.rate) == (True, 3.0, 2.0)


def test_a_smaller_burst_refuses_until_the_bucket_has_drained_below_it() -> None:
    bucket, clock = bucket_at(rate=2.0, burst=10)
    takes(bucket, 5)  # excess 4

    bucket.set_rate(2.0, burst=2)

    assert not bucket.take().accepted  # 4 + 1 > 2
    clock.advance(1.5)  # 4 - 3 + 1 = 2
    assert bucket.take().accepted


# -- headers ------------------------------------------------------------------


def bucket_with_excess_5_5() -> LeakyBucket:
    """rate 4/s, burst 10: 6 calls at once (excess 5), then one 0.125 s later: 5 - 0.5 + 1."""
    bucket, clock = bucket_at(rate=4.0, burst=10)
    takes(bucket, 6)
    clock.advance(0.125)
    return bucket


def test_ratelimit_headers_give_what_the_next_second_takes() -> None:
    decision = bucket_with_excess_5_5().take()
    assert decision.excess == 5.5

    headers = rate_limit_headers("ratelimit", decision, EPOCH)

    # within 1 s: floor(10 - 5.5 + 4) = 8 more; an empty bucket would take 10 + 4
    assert headers == (
        ("RateLimit-Limit", "14"),
        ("RateLimit-Remaining", "8"),
        ("RateLimit-Reset", "1"),
    )


def test_x_ratelimit_headers_give_the_reset_as_a_unix_time() -> None:
    decision = bucket_with_excess_5_5().take()

    headers = rate_limit_headers("x-ratelimit", decision, EPOCH)

    # the window ends at 1_700_000_002, 1.5 s after 1_700_000_000.5: floor(10 - 5.5 + 6) = 10
    assert headers == (
        ("X-RateLimit-Limit", "16"),
        ("X-RateLimit-Remaining", "10"),
        ("X-RateLimit-Reset", "1700000002"),
    )


def test_draft_headers_give_a_policy_and_what_is_left() -> None:
    decision = bucket_with_excess_5_5().take()

    headers = rate_limit_headers("draft", decision, EPOCH)

    assert headers == (
        ("RateLimit-Policy", '"default";q=14;w=1'),
        ("RateLimit", '"default";r=8;t=1'),
    )


def test_a_refusal_leaves_what_the_bucket_drains_in_a_second() -> None:
    bucket, _clock = bucket_at(rate=4.0, burst=10)
    takes(bucket, 11)

    headers = rate_limit_headers("draft", bucket.take(), EPOCH)

    # excess 10: floor(10 - 10 + 4)
    assert headers[1] == ("RateLimit", '"default";r=4;t=1')


# -- settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [{"throttle_status": 500}, {"rate_headers": "github"}, {"rate_limit": -1.0}, {"burst": -1}],
)
def test_faults_refuse_bad_limit_settings(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Faults(**bad)  # type: ignore[arg-type]


# -- the real server ----------------------------------------------------------


def test_the_server_limits_children_only_and_changes_its_rate_on_request() -> None:
    tree = FakeTree(seed=1, roots=3, fanout=(2,), even=True)
    item = tree.item("F1")
    children = f"/children?id=F1&name={item['name']}&type={item['type']}"
    faults = Faults(rate_limit=1.0, burst=2, rate_headers="ratelimit")

    with FakeAPI(tree, faults=faults) as api, httpx.Client(base_url=api.url, trust_env=False) as c:
        answers = [c.get(children) for _ in range(4)]
        features = [c.get("/features") for _ in range(5)]
        other_route = c.get("/features/F1/children").status_code
        changed = c.post("/_rate", json={"rate": 1000, "burst": 10})
        after = c.get(children)
        bad = [
            c.post("/_rate", content=b"not json").status_code,
            c.post("/_rate", json={"rate": -1}).status_code,
            c.post("/_rate", json={"rate": "fast"}).status_code,
            c.post("/_rate", json={"burst": 3}).status_code,
        ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].headers["Retry-After"] == "1"
    assert answers[3].headers["RateLimit-Remaining"] == "1"  # floor(2 - 2 + 1)
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[0].headers["RateLimit-Remaining"] == "3"  # floor(2 - 0 + 1)
    assert [f.status_code for f in features] == [200] * 5
    assert not any("RateLimit-Limit" in f.headers for f in features)
    assert other_route == 429
    assert (changed.status_code, changed.json()) == (200, {"rate": 1000.0, "burst": 10})
    assert after.status_code == 200
    assert bad == [400, 400, 400, 400]
    assert api.stats.statuses[429] == 2
    assert api.stats.calls["F1"] == 4  # the refused calls never reached the tree


# -- the other shapes: windows ---------------------------------------------------------


def test_a_fixed_window_takes_its_limit_then_refuses_until_the_next_second() -> None:
    now = [100.2]
    window = WindowLimiter(3, sliding=False, clock=lambda: now[0])
    taken = [window.take() for _ in range(4)]
    assert [d.accepted for d in taken] == [True, True, True, False]
    assert (taken[-1].remaining, taken[-1].reset_at) == (0, 101.0)
    now[0] = 100.99
    assert not window.take().accepted
    now[0] = 101.0  # a new window: the whole limit again
    assert [window.take().accepted for _ in range(4)] == [True, True, True, False]


def test_a_sliding_window_counts_refused_calls_too() -> None:
    now = [0.0]
    window = WindowLimiter(2, sliding=True, clock=lambda: now[0])
    assert [window.take().accepted for _ in range(2)] == [True, True]
    now[0] = 0.9
    assert not window.take().accepted  # refused, and counted: it leaves at 1.9
    now[0] = 1.0  # the two taken calls left the window; the refused one has not
    assert window.take().accepted
    assert not window.take().accepted
    now[0] = 1.95  # the first refused call left, but the one at 1.0 still counts
    assert not window.take().accepted
    now[0] = 2.0  # only the refusal at 1.95 is left in the window: one place
    decision = window.take()
    assert decision.accepted and decision.remaining == 0


def test_a_windows_headers_give_its_reset_as_a_unix_time() -> None:
    now = [1_000.25]
    window = WindowLimiter(10, sliding=False, clock=lambda: now[0])
    decision = window.take()
    assert window.headers(decision, now[0]) == (
        ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "9"),
        ("X-RateLimit-Reset", "1001"),
    )


def test_a_limiter_shape_is_one_of_the_known_ones() -> None:
    assert parse_limiter(" Sliding ") == "sliding"
    with pytest.raises(ValueError, match="--limiter: expected one of bucket, window"):
        parse_limiter("token")
