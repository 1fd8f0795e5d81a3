"""The pacer: its bucket and its rules, on a fake clock, and crawls in simulated time."""

from __future__ import annotations

import threading

import pytest

from resumer.policies.pacer import BETA, HOLD, Pacer, RateLimits
from resumer.policies.retry import Stopped
from tests.simulated import Clock, Result, Server, crawl

RATE, BURST = 100.0, 10  # the server's limit in the simulated crawls: nginx's 100r/s burst=10


def simulated(server: Server, queries: int = 1110, **kwargs: object) -> Result:
    clock = Clock()
    pacer = Pacer(clock=clock, **kwargs)  # type: ignore[arg-type]
    return crawl(server, queries=queries, pacer=pacer, clock=clock)


# -- the bucket ----------------------------------------------------------------


def test_a_fixed_bucket_allows_the_burst_then_spaces_calls_at_the_rate() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=50, burst=5, adaptive=False, clock=clock)
    waits = [pacer.reserve() for _ in range(10)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10])


def test_a_fixed_bucket_refills_with_time_but_never_beyond_the_burst() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=10, burst=2, adaptive=False, clock=clock)
    pacer.reserve(), pacer.reserve()
    clock.now = 100.0
    assert [pacer.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_nothing_limits_calls_until_the_first_throttle() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(1000):
        pacer.record(sent=clock.now, throttled=False, success=True)
        clock.now += 0.001
    assert pacer.rate is None
    assert [pacer.reserve() for _ in range(5)] == [0.0] * 5


def test_a_stop_interrupts_a_wait_for_a_slot() -> None:
    pacer = Pacer(ceiling=0.001, adaptive=False)
    pacer.reserve()
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        pacer.acquire(stop)


def test_a_pause_ends_one_call_at_a_time_never_in_a_burst() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=10, burst=5, adaptive=False, clock=clock)
    pacer.record(sent=0.0, throttled=True, success=False, retry_after=2.0)
    waits = [pacer.reserve() for _ in range(4)]
    assert waits == pytest.approx([2.0, 2.1, 2.2, 2.3])  # the saved-up burst is not spent


def test_a_call_sent_before_a_pause_does_not_stretch_it() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=10, adaptive=False, retry_max=5.0, clock=clock)
    pacer.record(sent=0.0, throttled=True, success=False, retry_after=3.0)
    assert pacer.paused_for == 3.0
    clock.now = 1.0
    pacer.record(sent=-0.5, throttled=True, success=False, retry_after=3.0)  # older news
    assert pacer.paused_for == 2.0
    assert pacer.paused_until is None  # a short pause: not a wait to show


# -- the rules -----------------------------------------------------------------


def throttle_after(pacer: Pacer, clock: Clock, successes: int, gap: float) -> None:
    for _ in range(successes):
        pacer.record(sent=clock.now, throttled=False, success=True)
        clock.now += gap
    pacer.record(sent=clock.now, throttled=True, success=False)


def test_a_throttle_cuts_from_the_rate_measured_not_from_the_ceiling() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=10_000, clock=clock)
    throttle_after(pacer, clock, successes=50, gap=0.005)  # sending at 200/s
    assert pacer.rate is not None
    assert 100 <= pacer.rate < 200


def test_many_throttles_in_flight_cut_the_rate_once() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    throttle_after(pacer, clock, successes=50, gap=0.005)
    after_one = pacer.rate
    for _ in range(30):  # the rest of that round: sent before the cut
        pacer.record(sent=clock.now - 0.01, throttled=True, success=False)
    assert pacer.rate == after_one
    assert pacer.cuts == 1


def test_the_rate_grows_back_after_a_cut_and_never_past_the_ceiling() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=250, clock=clock)
    throttle_after(pacer, clock, successes=50, gap=0.005)
    cut = pacer.rate
    assert cut is not None
    for _ in range(20_000):
        clock.now += 0.002  # sending at 500/s: room to grow
        pacer.record(sent=clock.now, throttled=False, success=True)
    assert pacer.rate == 250


def cut_then_climb(pacer: Pacer, clock: Clock, seconds: float, start: float = 90.0) -> None:
    """Answers for ``seconds`` after a cut, sent at a rate climbing from ``start``/s by
    10/s each second (as the pacer lets it climb back), all of them taken."""
    t = 0.0
    while t < seconds:
        gap = 1 / (start + 10 * t)
        clock.now += gap
        t += gap
        pacer.record(sent=clock.now, throttled=False, success=True)


def test_the_limit_is_measured_between_two_cuts() -> None:
    """A bucket that overflowed at two cuts let its rate through between them: the span
    measures the limit, where the last second's sending (up to 110/s) overstates it."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    throttle_after(pacer, clock, successes=100, gap=0.01)  # the first cut: no span yet
    cut_then_climb(pacer, clock, 2.0)  # 90/s up to 110/s: 200 calls taken in 2 s
    pacer.record(sent=clock.now, throttled=True, success=False)
    assert pacer.rate == pytest.approx(BETA * 100, rel=0.01)


def test_a_span_broken_by_a_pause_measures_nothing() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    throttle_after(pacer, clock, successes=100, gap=0.01)
    pacer.pause(0.5)
    clock.now += 0.5
    cut_then_climb(pacer, clock, 2.0)
    pacer.record(sent=clock.now, throttled=True, success=False)
    assert pacer.rate is not None and pacer.rate > BETA * 103  # from the last second's rate


@pytest.mark.parametrize(("left", "probes"), [(100_000, True), (150, False)])
def test_near_the_end_the_rate_holds_below_the_limit_instead_of_probing(
    left: int, probes: bool
) -> None:
    """A probe refused in the last seconds costs its call a Retry-After that nothing else
    overlaps: with under ENDGAME seconds of work left, the rate stays under the limit."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    throttle_after(pacer, clock, successes=100, gap=0.01)
    cut_then_climb(pacer, clock, 2.0)
    pacer.record(sent=clock.now, throttled=True, success=False)  # the limit: 100/s
    pacer.expect(left)
    peak = 0.0
    for _ in range(400):  # 4 s at 100/s, every call taken
        clock.now += 0.01
        pacer.record(sent=clock.now, throttled=False, success=True)
        peak = max(peak, pacer.rate or 0.0)
    if probes:
        assert peak > 110
    else:
        assert peak <= HOLD * 100 * 1.01


def answer_with_headers(
    pacer: Pacer, clock: Clock, *, every: float, remaining: list[float], reset: float
) -> None:
    """Answers ``every`` seconds apart, each saying the next of ``remaining``."""
    for left in remaining:
        clock.now += every
        limits = RateLimits(remaining=left, reset=reset)
        pacer.record(sent=clock.now, throttled=False, success=True, limits=limits, in_flight=1)


def test_headers_that_hold_while_calls_go_out_cap_nothing() -> None:
    """A bucket of 100 calls/s described in whole seconds says "9 left, reset in 1 s" at
    any rate below its own: at 50 calls/s that is no ceiling of 9 calls/s."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    answer_with_headers(pacer, clock, every=0.02, remaining=[9.0] * 50, reset=1.0)
    assert pacer.rate is not None and pacer.rate >= 50.0
    assert "holding" in pacer.reason


def test_headers_found_understated_cap_at_the_rate_that_keeps_them_when_they_fall() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    # Half a second at 100 calls/s with "30 left in 1 s" holding: they understate.
    answer_with_headers(pacer, clock, every=0.01, remaining=[30.0] * 60, reset=1.0)
    # Then Remaining falls by 40 a second at 100 answers a second: the budget refills at 60/s.
    falling = [30.0 - 0.4 * n for n in range(60)]
    answer_with_headers(pacer, clock, every=0.01, remaining=falling, reset=1.0)
    assert pacer.rate is not None and BETA * 60.0 * 0.99 <= pacer.rate <= 60.0  # cut, climbing
    assert "falling, at 60.0/s" in pacer.reason  # the calls taken less the fall: the limit
    assert pacer.cuts == 1


def test_running_dry_while_headers_paced_nothing_cuts_the_rate_deeply() -> None:
    """Whole-second headers that said "9 left" until the budget ran out in a burst: the
    rate was far above the server's, whatever they said, so it is cut (and no call goes
    before the reset)."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    answer_with_headers(pacer, clock, every=0.002, remaining=[9.0] * 60, reset=1.0)
    before = pacer.rate
    assert before is not None and before >= 100  # holding: no ceiling of 9 calls/s
    pacer.record(
        sent=clock.now, throttled=False, success=True, limits=RateLimits(0, 1.0), in_flight=1
    )
    assert pacer.rate is not None and pacer.rate <= 0.5 * before
    assert pacer.reserve() == pytest.approx(1.0)


def test_the_curve_does_not_grow_while_every_call_waits() -> None:
    """A pause is time nothing is sent: the climb back to the last cut's rate resumes after
    it, where it stood, rather than at the rate the pause's length would have reached."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    answer_with_headers(pacer, clock, every=0.002, remaining=[9.0] * 60, reset=1.0)
    pacer.record(sent=clock.now, throttled=False, success=True, limits=RateLimits(0, 5.0))
    cut = pacer.rate
    clock.now += 5.0  # the reset: the pause is over
    pacer.record(sent=clock.now, throttled=False, success=True)
    assert cut is not None and pacer.rate is not None and pacer.rate < cut / BETA


def test_a_window_draining_as_it_should_caps_at_what_is_left_spread_to_the_reset() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    # A fixed window: Remaining falls by every call taken, whatever the rate below the limit.
    falling = [100.0 - n for n in range(60)]
    answer_with_headers(pacer, clock, every=0.01, remaining=falling, reset=30.0)
    assert pacer.rate == pytest.approx(falling[-1] / 30.0, rel=0.05)


def test_a_new_window_is_a_new_budget_not_a_budget_that_held() -> None:
    """A start-up burst at 160 calls/s into a fixed window of 100 a second, begun half way
    through it: Remaining falls to 20, then the next window says 99. Read as one trend that
    "held" at 99 while calls went out at 160/s, and then "fell by fewer than the calls
    taken"; it once cut the rate to its floor, and a crawl of seconds took a minute."""
    clock = Clock()
    clock.now = 0.5
    pacer = Pacer(clock=clock)
    taken = {0: 0, 1: 0}
    for _ in range(150):  # 0.94 s at 160 answers a second: 80 in the first window, 70 in the next
        clock.now += 1 / 160
        window = int(clock.now)
        taken[window] = taken.get(window, 0) + 1
        limits = RateLimits(remaining=100.0 - taken[window], reset=window + 1 - clock.now)
        pacer.record(sent=clock.now, throttled=False, success=True, limits=limits, in_flight=1)
    assert pacer.cuts == 0
    assert pacer.rate is not None and pacer.rate >= 30.0  # what is left, spread to the reset


def test_a_budget_that_falls_by_fewer_than_the_calls_taken_refills_and_understates() -> None:
    """Remaining falls by 6 a second at 100 answers a second, from "9 left in 1 s": not a
    window (that falls by every call), a bucket refilling at 94/s: no ceiling of 9/s."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    falling = [9.0 - 0.06 * n for n in range(100)]
    answer_with_headers(pacer, clock, every=0.01, remaining=falling, reset=1.0)
    assert pacer.rate is not None and pacer.rate >= 80.0
    assert "falling, at" in pacer.reason


def test_falling_headers_still_spread_what_is_left_when_that_is_more() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    # A window of 1 s: what is left over the time to the reset says more than the trend.
    falling = [100.0 - 0.4 * n for n in range(60)]
    answer_with_headers(pacer, clock, every=0.01, remaining=falling, reset=1.0)
    assert pacer.rate == pytest.approx(falling[-1], rel=0.05)  # 76 left in 1 s


def test_no_call_left_means_no_call_before_the_reset() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.record(sent=0.0, throttled=False, success=True, limits=RateLimits(0, 3.0))
    assert pacer.reserve() == pytest.approx(3.0)


def test_what_is_left_all_in_flight_waits_for_the_reset_not_for_the_floor() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    falling = [100.0 - n for n in range(60)]  # a window spent down, call by call
    answer_with_headers(pacer, clock, every=0.01, remaining=falling, reset=1.0)
    limits = RateLimits(remaining=3, reset=0.25)
    pacer.record(sent=clock.now, throttled=False, success=True, limits=limits, in_flight=5)
    assert pacer.reserve() == pytest.approx(0.25)  # the next window, not 1 / MIN_RATE
    assert "all in flight" in pacer.reason


def test_slots_handed_out_at_a_low_rate_are_taken_anew_when_it_rises_far() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=1.0, clock=clock)
    waits = [pacer.reserve() for _ in range(5)]
    assert waits[-1] == pytest.approx(4.0)  # five slots, a second apart
    epoch = pacer.epoch
    pacer.ceiling = 100.0
    with pacer._lock:
        pacer._set_rate(clock.now)
    assert pacer.epoch != epoch  # the waiters take new slots ...
    assert pacer.reserve() <= 0.02  # ... a hundredth of a second apart


def test_a_header_never_lifts_the_rate_above_the_ceiling() -> None:
    clock = Clock()
    pacer = Pacer(ceiling=5, clock=clock)
    pacer.record(sent=0.0, throttled=False, success=True, limits=RateLimits(1000, 1.0))
    assert pacer.rate == 5


def test_a_503_sheds_load_while_some_calls_still_succeed() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert not pacer.accepting()  # nothing succeeded yet: an outage until shown otherwise
    pacer.record(sent=0.0, throttled=False, success=True)
    assert pacer.accepting()
    clock.now = 1.5  # errors only since
    assert not pacer.accepting()
    assert not Pacer(adaptive=False).accepting()


def test_an_outage_undoes_the_cuts_its_first_503s_made() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    throttle_after(pacer, clock, successes=50, gap=0.005)  # a real throttle: 100-200/s
    clock.now += 0.01
    pacer.record(sent=clock.now, throttled=False, success=True)  # the last success
    before = pacer.rate
    for _ in range(5):  # the outage begins: 503s that look like load shed at first
        clock.now += 0.05
        pacer.record(sent=clock.now, throttled=True, success=False)
    assert pacer.rate is not None and before is not None and pacer.rate < before
    clock.now += 1.0
    pacer.record(sent=clock.now, throttled=False, success=False, failed=True)
    assert pacer.rate == pytest.approx(before, rel=0.05)


# -- crawls in simulated time against nginx's limit_req (100 r/s, burst 10) ------------


TREE = (10, 10, 10)  # 1,110 queries: 10 roots, 10 children each, down to level 4
IDEAL = 1110 / RATE  # seconds, at exactly the allowed rate


@pytest.mark.parametrize("retry_after", [1.0, None])
def test_a_crawl_converges_to_a_fixed_limit(retry_after: float | None) -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    result = crawl(
        Server(rate=lambda t: RATE, burst=BURST),
        tree=TREE,
        retry_after=retry_after,
        pacer=pacer,
        clock=clock,
    )
    assert IDEAL / result.wall >= 0.97  # a Retry-After parks its query, not its worker
    assert result.throttled_share <= 0.05
    assert result.accepted_between(5, 10) >= 0.9 * RATE


@pytest.mark.parametrize("latency", [0.001, 0.003, 0.008, 0.02])
def test_no_refusal_in_the_last_retry_after_of_a_crawl(latency: float) -> None:
    """A query refused in the last second would end the crawl a Retry-After late."""
    result = crawl(Server(rate=lambda t: RATE, burst=BURST, latency=latency), tree=TREE)
    last_refusal = max(t for t, accepted in result.sent if not accepted)
    assert result.wall - last_refusal > 1.0 + 0.5


def test_a_crawl_follows_a_drop_to_a_third_and_a_rise_back() -> None:
    def limit(t: float) -> float:
        return RATE / 3 if 4 <= t < 14 else RATE

    result = simulated(Server(rate=limit, burst=BURST), queries=2000)
    assert result.accepted_between(9, 14) >= 0.85 * RATE / 3  # held at the new limit
    sent_after_drop = [t for t, _ in result.sent if 9 <= t < 14]
    assert len(sent_after_drop) <= 1.1 * 5 * RATE / 3  # and not refused much above it
    assert result.accepted_between(20, 24) >= 0.8 * RATE  # back up after the rise
    assert result.throttled_share <= 0.08


def test_a_server_that_refuses_a_share_at_random_does_not_drive_the_rate_down() -> None:
    def noisy() -> Server:
        return Server(rate=lambda t: 0.0, noise=0.05)  # no limit, 5% refused whatever the rate

    paced = simulated(noisy(), queries=5000)
    fixed = simulated(noisy(), queries=5000, adaptive=False)
    assert fixed.wall / paced.wall >= 0.8


def test_rate_limit_headers_keep_throttles_rare() -> None:
    result = simulated(Server(rate=lambda t: RATE, burst=BURST, headers=True))
    assert result.throttled_share < 0.01
    assert (1110 / RATE) / result.wall >= 0.8


@pytest.mark.parametrize(("latency", "share"), [(0.001, 0.8), (0.02, 0.9)])
def test_a_bucket_described_in_whole_seconds_is_used_nearly_whole(
    latency: float, share: float
) -> None:
    """A bucket of 100 calls/s that says "10 calls, 9 left, reset in 1 s": believed as a
    ceiling it allows 9 calls/s; sending into its "0 left" pauses every call for a second.
    Read as hints, its fall measures the limit and the crawl stays just under it."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    server = Server(
        rate=lambda t: RATE, burst=BURST, latency=latency, headers=True, header_style="bucket"
    )
    result = crawl(server, tree=TREE, pacer=pacer, clock=clock)
    assert IDEAL / result.wall >= share  # 0.14 and 0.82 when they were believed
    assert result.throttled_share <= 0.01


@pytest.mark.parametrize("latency", [0.001, 0.02])
def test_a_fixed_window_is_used_whole_and_never_refuses(latency: float) -> None:
    """100 calls in each whole second, its headers the calls left and the time to its end:
    what is left is spread to the end; once what is left is all in flight, the next call
    waits for the next window (not for a slot at the floor's rate, seconds away)."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    server = Server(rate=lambda t: RATE, latency=latency, headers=True, fixed_window=True)
    result = crawl(server, tree=TREE, pacer=pacer, clock=clock)
    assert IDEAL / result.wall >= 0.93
    assert result.throttles == 0


@pytest.mark.parametrize("latency", [0.001, 0.02])
def test_a_sliding_window_that_counts_refused_calls_is_not_probed_into(latency: float) -> None:
    """Refused calls count in the window too: a cut must leave the window room to drain.
    After a cut, the calls waiting for slots handed out at the old rate go no sooner than
    the last of those slots (a rule that once cost this crawl a quarter of its rate)."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    server = Server(rate=lambda t: RATE, latency=latency, sliding_window=True)
    result = crawl(server, tree=TREE, pacer=pacer, clock=clock)
    assert IDEAL / result.wall >= 0.85
    assert result.throttled_share <= 0.05


@pytest.mark.parametrize("latency", [0.001, 0.005, 0.02])
def test_haproxy_s_request_rate_is_not_cut_to_a_trickle(latency: float) -> None:
    """HAProxy's ``sc_http_req_rate`` weighs in the last period's calls, refused ones too:
    after a burst it refuses for over a second whatever the rate. Cuts that close after
    the last never go below what it took before it closed, so there is no climb back."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    server = Server(rate=lambda t: RATE, latency=latency, haproxy_window=True)
    result = crawl(server, tree=TREE, pacer=pacer, clock=clock)
    assert IDEAL / result.wall >= 0.87  # 0.75-0.79 when each cut could halve the last
    assert result.throttled_share <= 0.05


def test_a_server_that_took_nothing_since_the_last_cut_is_not_cut_below_what_it_took() -> None:
    """A window refusing everything for a while after a burst: a rate below what it took
    a moment ago would measure nothing new. Two seconds without a success, though, and
    the cuts go on down (a server closed for longer pauses every call at the floor)."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(100):  # a second at 100 calls/s, all taken
        clock.now += 0.01
        pacer.record(sent=clock.now, throttled=False, success=True)
    rates = []
    for _ in range(40):  # then 4 s of nothing but refusals, one every 0.1 s
        clock.now += 0.1
        pacer.record(sent=clock.now, throttled=True, success=False)
        rates.append(pacer.rate or 0.0)
    assert min(rates[:15]) >= 0.7 * 100  # what it took over its last second, cut once
    assert rates[-1] < 1.0  # at the floor


def test_the_ceiling_holds_even_when_the_server_allows_more() -> None:
    result = simulated(Server(rate=lambda t: 1000.0, burst=BURST), ceiling=50.0, queries=500)
    assert result.throttles == 0
    assert result.accepted_between(1, 9) <= 50.0 * 1.01


# -- long waits and quotas ----------------------------------------------------------


@pytest.mark.parametrize("adaptive", [True, False])
def test_a_wait_longer_than_retry_max_is_sat_out_in_full_by_every_call(adaptive: bool) -> None:
    clock = Clock()
    pacer = Pacer(adaptive=adaptive, retry_max=30.0, max_pause=900.0, clock=clock)
    pacer.record(sent=0.0, throttled=True, success=False, retry_after=600.0)
    assert pacer.paused_until == 600.0 and pacer.closed_until is None
    assert pacer.reserve() == 600.0  # no call before it: the quota is closed
    clock.now = 599.0
    assert pacer.paused_until == 600.0
    clock.now = 600.0
    assert pacer.paused_until is None  # over: calls go again


def test_rate_limit_headers_with_nothing_left_for_long_are_a_long_wait() -> None:
    clock = Clock()
    pacer = Pacer(retry_max=30.0, max_pause=900.0, clock=clock)
    limits = RateLimits(limit=1000, remaining=0, reset=120.0)
    pacer.record(sent=0.0, throttled=True, success=False, limits=limits, in_flight=1)
    assert pacer.paused_until == 120.0 and pacer.reserve() == 120.0


def test_a_wait_longer_than_max_pause_closes_and_nothing_more_goes_out() -> None:
    clock = Clock()
    pacer = Pacer(retry_max=30.0, max_pause=900.0, clock=clock)
    pacer.record(sent=0.0, throttled=True, success=False, retry_after=3 * 3600.0)
    assert pacer.closed_until == 3 * 3600.0
    assert pacer.reserve() == 3 * 3600.0


def test_nothing_but_throttles_for_max_pause_closes() -> None:
    clock = Clock()
    pacer = Pacer(retry_max=30.0, max_pause=60.0, clock=clock)
    pacer.record(sent=0.0, throttled=False, success=True)
    for second in range(1, 60):  # a short Retry-After each time: never a long wait
        clock.now = float(second)
        pacer.record(sent=clock.now, throttled=True, success=False, retry_after=1.0)
        assert pacer.closed_until is None
    clock.now = 60.0
    pacer.record(sent=clock.now, throttled=True, success=False, retry_after=1.0)
    assert pacer.closed_until == 61.0


def test_a_success_now_and_then_keeps_a_throttled_run_going() -> None:
    clock = Clock()
    pacer = Pacer(retry_max=30.0, max_pause=60.0, clock=clock)
    for second in range(1, 200):
        clock.now = float(second)
        success = second % 50 == 0
        pacer.record(sent=clock.now, throttled=not success, success=success, retry_after=1.0)
    assert pacer.closed_until is None


def test_a_resume_before_the_time_said_waits_every_call_until_then() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.wait_until(42.0, "the time the API named")
    assert (pacer.paused_until, pacer.closed_until, pacer.reserve()) == (42.0, None, 42.0)


def test_in_the_first_second_a_cut_never_goes_below_what_the_server_took() -> None:
    """A window that counts refused calls refuses every call for a while after the first
    refusals: each of those throttles, of a call sent after the last cut, cuts again.
    In the first second the server took 100 calls: the rate stays near them."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    for n in range(100):  # 100 calls taken within 0.3 s
        clock.now = n * 0.003
        pacer.record(sent=clock.now, throttled=False, success=True)
    for _ in range(8):  # then refusals, each of a call sent after the previous cut
        clock.now += 0.01
        pacer.record(sent=clock.now, throttled=True, success=False, retry_after=1.0)
    assert pacer.rate == pytest.approx(BETA * 0.9 * 100)  # BETA of SEEN of what it took
