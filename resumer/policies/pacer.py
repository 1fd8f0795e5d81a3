"""The send rate: a token bucket whose fill rate floats with what the server accepts.

Rate and concurrency are different limits: a fast server refuses by rate long
before concurrency matters (one call in flight can exceed 100/s), so the
gate paces calls here before they take a slot.

How the rate moves (``adaptive``; the AWS SDKs' "adaptive" retry mode is the
model, with CUBIC growth). These are the rules; ``bench/pacing.py`` and
``tests/simulated.py`` are where they were measured:

- Until the first throttle nothing limits calls: sending costs one
  attribute test, and each answer one short locked count (what the first
  cut measures from).
- A throttle (a 429, or a 503 while the server still accepts other calls)
  cuts the rate from what was *measured*, not from the configured rate: the
  rate really sent over the last second of activity (or the rate in force,
  if lower), times the share of calls the server took since the last cut
  (at least ``MIN_FACTOR``) and not much below what it took over the last
  second (``SEEN``); then ``BETA`` of that. In the first second of activity,
  and within a second of the last cut, never below that share of what the
  server took over the last second, nor below ``MIN_FACTOR`` of the limit
  the last cut measured: a window that counts refused calls refuses every
  call for a while after the first refusals, whatever the rate, and each
  refusal would cut again. While the server has taken nothing since the last
  cut (and took some within ``CLOSED_FOR``), not even that: no lower than
  what it took over the second before it closed. Between two cuts at least
  ``MIN_BETWEEN`` apart, with no pause between, the calls the server took
  over that span measure its limit more finely (a bucket that overflowed at
  both ends let exactly its rate through): that measure is used when it
  agrees with the other within ``AGREE``. Only throttles of calls paced
  after the last cut count (one cut per round of feedback), so N refused
  calls in flight cut it once; slots handed out before a cut are void, so
  the calls waiting for them leave at the new rate.
- Successes raise it along a cubic curve: back to the rate of the last cut
  within ``K`` seconds, a plateau there, then ever faster probing above it;
  never above twice the rate sent, nor above ``ceiling``.
- Near the end (``expect``: the work left takes under ``ENDGAME`` seconds
  at the limit), no probing: the rate holds at ``HOLD`` of the limit. A
  refused probe costs its call a Retry-After that no other work overlaps,
  and there is nothing left to gain a faster rate on.
- A server that refuses a share of calls whatever the rate (the least share
  refused at the last ``NOISE_MEMORY`` cuts) does not drive the rate down:
  refusals up to ``NOISE_TOLERANCE`` times that share, while the curve is
  climbing back after a cut, are noise and cut nothing.
- A failure (a 5xx, a timeout, a 503 among nothing but errors) undoes the
  cuts made since the last success: those 503s were an outage, the
  breaker's business, not load shed.
- Rate-limit headers (``RateLimits``) are hints, read for their trend.
  While ``Remaining`` holds, the budget is not being spent down: no ceiling
  until it has held for a whole ``TREND_WINDOW``, then the calls left (less
  those in flight) spread to the reset. While it falls, a window (it falls by
  every call taken) caps at that spread. A budget that falls by fewer calls
  than it took refills as it goes: the calls taken less the fall, over the
  time since the fall began, is the rate it refills at, the server's limit
  (``_drain_rate``). A rise by more than the calls in flight could reorder is a
  new budget (a window's reset, a refill): the trend starts again there.
  Headers that hold while calls go out at ``UNDERSTATED`` times the spread
  or more, or whose budget refills that fast, understate (a bucket of 100
  calls/s described in whole seconds says "9 left, reset in 1 s" at any
  rate below its own): no ceiling for good, and when such a budget falls
  the rate is cut as a throttle would cut it, from the limit its fall
  measured, so what is left refills before it runs out. None left:
  no call before the reset, and if the headers were not what paced the
  calls, a cut (to ``MIN_FACTOR`` of the rate unless the fall measured the
  limit): the calls went well above what the server allows.
- Pauses stop the clock of the curve: it climbs back from where it stood
  when every call began to wait, not from where the pause's length took it.
- ``Retry-After`` delays the throttled call (the retry policy's business;
  the runner parks the node meanwhile, so its worker goes on).
  It pauses every call only when cutting did not help (the rate is at its
  floor): the server is closed, not trimming excess. When a pause ends,
  calls leave one interval apart, never as a burst.
- A long wait (a ``Retry-After``, or a rate-limit reset with nothing left,
  longer than ``retry_max``) is a quota closed for a while: every call waits
  it out in full (``waiting_until``), whatever the rate. Longer than
  ``max_pause`` it is not sat out: ``closed_until`` says when to come back,
  and the run stops. So does a server that answered nothing but throttles
  for ``max_pause``: a throttle never fails a node, however long it lasts.

With ``adaptive=False`` the rate is fixed at ``ceiling`` (0: no limit) and
every ``Retry-After`` pauses every call, as a plain token bucket would.

This module knows nothing of HTTP or the job file; time comes from ``clock``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from resumer.policies.defaults import (
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BURST,
    DEFAULT_MAX_PAUSE,
    DEFAULT_PACING,
    DEFAULT_RATE,
)
from resumer.policies.retry import Stopped

log = logging.getLogger(__name__)

# Cutting
BETA = 0.9  # a cut sets the rate to this share of the limit it measured
MIN_FACTOR = 0.5  # the measured limit is at least this share of the rate sent ...
SEEN = 0.9  # ... and at least this share of what the server took over the last second
PRIOR = 2  # answers added to the count when judging the share refused since a cut
MIN_RATE = 0.5  # calls/s: the floor
CLOSED_FOR = 2.0  # seconds since the last success: a window refusing everything, not a limit
# Growing
CUBIC_SCALE = 0.05  # rate = limit * (1 + CUBIC_SCALE * (t - K) ** 3), t seconds since the cut
K = ((1 - BETA) / CUBIC_SCALE) ** (1 / 3)  # seconds back to the limit: 1.4
PLATEAU = 0.5  # seconds past K without a refusal: then ...
DOUBLING = 1.0  # ... the rate doubles every this many seconds (at least)
GROWTH_CAP = 2.0  # never above this many times the rate sent
# Measuring
WINDOW = 1.0  # seconds of answers behind the measured rates
BIN = 0.05  # seconds: their resolution
# Noise: refusals that have nothing to do with the rate
NOISE_MEMORY = 4  # the server's usual refused share: the least at this many cuts ...
EVIDENCE = 10  # ... each judged over this many answers at least
NOISE_TOLERANCE = 2.0  # up to this many times the usual share is noise ...
NOISE_PRIOR = 10  # ... counting this many more answers
# Outages: a 503 is load shed while a call succeeded within the time SHED_SUCCESSES
SHED_SUCCESSES = 5  # successes took over the last second ...
MIN_SHED_WINDOW = 0.05  # ... or within this many seconds, whichever is longer
# Between two cuts: the server took its limit (a full bucket at both ends)
MIN_BETWEEN = 1.0  # seconds between two cuts at least, for their span to measure the limit
AGREE = 0.9  # ... and within this share of the estimate (less: the bucket emptied meanwhile)
# The end of the crawl: probing above the limit pays only while there is work to gain from
ENDGAME = 2.0  # seconds of work left at the rate in force: no more probing ...
HOLD = 0.97  # ... and the rate held at this share of the limit last measured
# Headers and pauses
MAX_RESET = 3600.0  # seconds: the longest a rate-limit header's reset is believed
TREND_WINDOW = 0.5  # seconds of Remaining values whose trend says if the budget is spent down
MIN_TREND = 0.1  # seconds those values span at least, for a trend to be read
FALL_CALLS = 2  # Remaining fell by this many calls at least in that window ...
FALL_SHARE = 0.1  # ... and by this share of its highest value there: it is spent down
RESPACE = 2.0  # a rate that rises this many times over voids the slots handed out before
UNDERSTATED = 1.5  # sent at this many times what they say is left over the reset, and holding
_RECHECK = 0.1  # seconds: the longest a waiter sleeps before looking at the stop flag
LOG_CHANGE = 0.2  # a rate that moved by this share since the last one logged is logged


@dataclass(frozen=True, slots=True)
class RateLimits:
    """What an answer's rate-limit headers said (None: not said).

    ``remaining`` calls may be made within ``reset`` seconds; ``limit`` per
    ``window`` seconds is the policy (from ``RateLimit-Policy``).
    """

    remaining: float | None = None
    reset: float | None = None
    limit: float | None = None
    window: float | None = None


class _Meter:
    """Answers and successes over the last ``WINDOW`` seconds, in bins of ``BIN``.

    Rates are per second of *activity*: bins with no answer do not count, so a
    moment when every worker slept on a Retry-After does not read as a slow server.
    """

    def __init__(self) -> None:
        self._bins: deque[list[float]] = deque()  # [start, answers, successes]

    def add(self, now: float, success: bool) -> None:
        start = now - now % BIN
        if not self._bins or self._bins[-1][0] != start:
            self._bins.append([start, 0.0, 0.0])
            while self._bins[0][0] <= now - WINDOW - BIN:
                self._bins.popleft()
        last = self._bins[-1]
        last[1] += 1
        last[2] += success

    def counts(self, now: float) -> tuple[float, float, float]:
        """(answers, successes, seconds of activity) over the last ``WINDOW`` seconds."""
        cutoff = now - WINDOW
        answers = successes = span = 0.0
        for start, count, good in self._bins:
            if start + BIN > cutoff:
                answers += count
                successes += good
                span += BIN
        if span:
            newest = self._bins[-1][0]
            span -= BIN - max(BIN / 10, min(BIN, now - newest))  # the newest bin, so far
        return answers, successes, span

    def rates(self, now: float) -> tuple[float, float]:
        """(answers, successes) a second of activity over the last ``WINDOW`` seconds."""
        answers, successes, span = self.counts(now)
        return (answers / span, successes / span) if span else (0.0, 0.0)


class Pacer:
    """The calls a second allowed now, shared by every thread.

    >>> pacer = Pacer(ceiling=10.0, burst=2, clock=lambda: 0.0)
    >>> [pacer.reserve() for _ in range(4)]
    [0.0, 0.0, 0.1, 0.2]
    """

    def __init__(
        self,
        *,
        ceiling: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        adaptive: bool = DEFAULT_PACING,
        retry_max: float = DEFAULT_BACKOFF_MAX,
        max_pause: float = DEFAULT_MAX_PAUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_max = retry_max  # seconds: a wait up to this is a call's own, or a short pause
        self.max_pause = max_pause  # seconds: the longest wait the whole crawl sits out
        self.waiting_until: float | None = None  # a long wait: no call before this (clock time)
        self.closed_until: float | None = None  # asked to wait past max_pause: the run stops
        self.ceiling = ceiling if ceiling > 0 else math.inf
        self.burst = max(1, burst)
        self.adaptive = adaptive
        self.clock = clock
        self.reason = "no limit yet" if adaptive else "fixed"
        self.cuts = 0  # how many times a throttle cut the rate (for figures and tests)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._epoch = 0
        self._respace = False  # slots were voided: space the next from the last that went
        self._last_go = -math.inf
        self._meter = _Meter()
        self._curve: float | None = None  # the adaptive rate; None until the first throttle
        self._w_max = 0.0  # the rate the curve returns to (the last cut's)
        self._took = 0.0  # calls/s the server took in the second before the last cut it took some
        self._cut_at = -math.inf
        self._paused_since_cut = 0.0  # seconds: the curve does not grow while nothing is sent
        self._since_cut = [0, 0]  # answers, throttles of calls sent since the last cut
        self._taken = 0  # successes answered since the last cut (none: since the start)
        self._work_left: tuple[float, float] | None = None  # (when said, queries left)
        self._shares: deque[float] = deque(maxlen=NOISE_MEMORY)  # refused shares at cuts
        self._last_success = -math.inf
        self._last_ok = clock()  # the last success, or the start: throttles only since close it
        self._at_success: tuple[float | None, float, float] = (None, 0.0, -math.inf)
        self._header_rate: float | None = None
        self._header_until = -math.inf
        self._remaining: deque[tuple[float, float, int]] = deque()  # (when, Remaining, ok)
        self._successes = 0  # every success answered: what a budget's fall is measured against
        self._understated = False  # the headers said less than the server took, holding
        self._rate: float | None = None  # in force: min(curve, headers, ceiling)
        self._tat = clock()  # theoretical arrival time of the next call (GCRA)
        self._resume_at = -math.inf  # no call before this (a pause)
        self._paused_at = -math.inf  # when the last pause began
        self._logged: float | None = None
        self._limited = False  # False: acquire() is free
        self._set_rate(clock())

    # -- the bucket ------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Calls a second allowed now; None when nothing limits them."""
        return self._rate

    @property
    def paused_for(self) -> float:
        return max(0.0, self._resume_at - self.clock())

    @property
    def epoch(self) -> int:
        """Bumped when the rate is cut or a pause begins: slots reserved before are void."""
        return self._epoch

    def reserve(self) -> float:
        """Take the next free slot; return how long to wait before using it (0: at once)."""
        with self._lock:
            return self._reserve(self.clock())

    def _reserve(self, now: float) -> float:
        if self._rate is None:
            return max(0.0, self._resume_at - now)
        interval = 1.0 / self._rate
        tat = max(self._tat, now)
        go = max(now, tat - (self.burst - 1) * interval, self._resume_at)
        self._tat = max(tat, go) + interval
        self._last_go = go
        return go - now

    def acquire(self, stop: threading.Event) -> None:
        """Wait for a slot; ``Stopped`` if a stop comes first. A slot voided by a cut while
        waiting is given up for a new one at the new rate."""
        if not self._limited:
            return
        with self._cond:
            now = self.clock()
            go, epoch = now + self._reserve(now), self._epoch
            while True:
                if stop.is_set():
                    raise Stopped
                if epoch != self._epoch:
                    go, epoch = now + self._reserve(now), self._epoch
                if go <= now:
                    return
                self._cond.wait(min(go - now, _RECHECK))
                now = self.clock()

    # -- feedback --------------------------------------------------------------

    def record(
        self,
        *,
        sent: float,
        throttled: bool,
        success: bool,
        failed: bool = False,
        retry_after: float | None = None,
        limits: RateLimits | None = None,
        in_flight: int = 0,
    ) -> None:
        """One answer: a call sent at ``sent`` was throttled, succeeded, failed (5xx, a
        timeout: the breaker's business), or none of these (4xx)."""
        if success:
            self._last_ok = self.clock()  # one store (atomic): read under the lock below
        elif throttled:
            with self._lock:
                if self._long_waits(self.clock(), retry_after):
                    return  # every call waits it out, or the run stops: nothing more to learn
        if not self.adaptive:
            self._fixed(sent, throttled, retry_after)
            return
        with self._lock:
            now = self.clock()
            self._meter.add(now, success)
            if success:
                self._taken += 1
                self._successes += 1
                self._last_success = now
                self._at_success = (self._curve, self._w_max, self._cut_at)
            elif failed:
                self._outage()
            if sent >= self._cut_at:
                self._since_cut[0] += 1
                self._since_cut[1] += throttled
            if limits is not None:
                self._follow_headers(now, sent, limits, in_flight)
            if throttled:
                self._throttled(now, sent, retry_after)
            elif success and self._curve is not None:
                self._grow(now)
            elif limits is None and self._header_rate is None:
                return  # nothing changed
            self._set_rate(now)

    def accepting(self) -> bool:
        """True if a call succeeded lately: the server's 503s are then shedding load (a
        throttle), not an outage (a failure). "Lately": within the time the last
        second's successes took to come ``SHED_SUCCESSES`` at a time (at least
        ``MIN_SHED_WINDOW``), so an outage is told within a few calls' time."""
        if not self.adaptive:
            return False
        with self._lock:
            now = self.clock()
            accepted = self._meter.rates(now)[1]
            window = SHED_SUCCESSES / accepted if accepted else MIN_SHED_WINDOW
            return now - self._last_success < max(MIN_SHED_WINDOW, window)

    def _fixed(self, sent: float, throttled: bool, retry_after: float | None) -> None:
        """A fixed bucket (``adaptive=False``): every Retry-After pauses every call."""
        if throttled and retry_after:
            self.pause(retry_after, sent)

    @property
    def paused_until(self) -> float | None:
        """When the long wait in force ends (clock time), or None."""
        until = self.waiting_until
        return until if until is not None and until > self.clock() else None

    def wait_until(self, seconds: float, why: str) -> None:
        """Every call waits ``seconds`` from now, in full (a resume before the time the API
        named): as a long wait the API asked for, but never closing."""
        with self._lock:
            now = self.clock()
            self._wait(now, seconds, why)

    def _long_waits(self, now: float, retry_after: float | None) -> bool:
        """After a throttle: sit out a long wait the API asked for, or close past
        ``max_pause`` (so does a server that throttled everything since); True if so."""
        if retry_after is not None and retry_after > self.retry_max:
            return self._asked(now, retry_after, f"Retry-After: {retry_after:g}s")
        if now - self._last_ok >= self.max_pause and self.closed_until is None:
            wait = retry_after if retry_after is not None else self.retry_max
            self._close(now, wait, f"nothing but throttles for {now - self._last_ok:.0f}s")
            return True
        return False

    def _asked(self, now: float, seconds: float, why: str) -> bool:
        """The API asked for a long wait: sat out by every call, or past ``max_pause`` the
        run stops (``closed_until``)."""
        if seconds > self.max_pause:
            self._close(now, seconds, why)
        else:
            self._wait(now, seconds, why)
        return True

    def _wait(self, now: float, seconds: float, why: str) -> None:
        until = now + seconds
        if self.waiting_until is None or until > self.waiting_until + 1.0:
            log.info("waiting %.0fs, every call (%s)", seconds, why)
        self.waiting_until = max(until, self.waiting_until or until)
        self._pause_until(now, until)
        self.reason = f"paused for {seconds:.0f}s ({why})"

    def _close(self, now: float, seconds: float, why: str) -> None:
        until = now + seconds
        if self.closed_until is None:
            log.warning(
                "the API asked to wait %.0fs (%s), longer than [rate] max_pause (%.0fs):"
                " the run stops",
                seconds,
                why,
                self.max_pause,
            )
        self.closed_until = max(until, self.closed_until or until)
        self._pause_until(now, until)  # nothing more goes out while the run stops

    def pause(self, seconds: float, sent: float | None = None) -> None:
        """No call before ``seconds`` (at most ``retry_max``) from now; then calls leave one
        interval apart. A call ``sent`` before the last pause began tells nothing new."""
        seconds = min(seconds, self.retry_max)
        with self._lock:
            now = self.clock()
            if sent is not None and sent < self._paused_at:
                return
            if self._resume_at <= now:
                log.info("pausing every call for %.2fs (the server asked)", seconds)
                self._paused_at = now
            self._pause_until(now, now + seconds)

    def _pause_until(self, now: float, until: float) -> None:
        """No call before ``until``; the first after it goes alone, the next an interval later."""
        if until <= self._resume_at:
            return
        self._paused_since_cut += until - max(now, self._resume_at, self._cut_at)
        self._resume_at = until
        self._void_slots(now)
        if self._rate is not None:
            self._tat = until + (self.burst - 1) / self._rate
        self._limited = True

    def _void_slots(self, now: float) -> None:
        """Slots handed out at the old rate are void: their waiters take new ones, the first
        an interval (at the new rate) after the last call that went."""
        self._epoch += 1
        self._respace = True
        self._cond.notify_all()

    # -- the rules -------------------------------------------------------------

    def _throttled(self, now: float, sent: float, retry_after: float | None) -> None:
        if sent < self._cut_at:
            return  # sent before the last cut: that cut already answered it
        answers, throttles = self._since_cut
        share = throttles / (answers + PRIOR)  # few answers are weak evidence
        noise = self._noise()
        usual = noise > 0 and throttles <= max(
            1, NOISE_TOLERANCE * noise * (answers + NOISE_PRIOR)
        )  # hardly more refused since the cut than this server refuses whatever the rate
        if usual and self._curve is not None and now - self._cut_at < K:
            return  # and the curve is still below the rate refused: noise, not news
        excess = 0.0 if usual else max(0.0, share - noise)
        if answers >= EVIDENCE:
            self._shares.append(share)
        current = self._current(now)
        # What the server took of what was sent since the last cut: about its limit; and
        # not much less than it took over the last second (a burst of refusals, such as a
        # full bucket's, says "less", not "nothing").
        estimate = current * max(MIN_FACTOR, 1.0 - excess)
        _, accepted, span = self._meter.counts(now)
        floor = 0.0
        if span >= WINDOW / 2:  # not at the start, when the server's burst inflates it
            estimate = max(estimate, SEEN * accepted / span)
        if span < WINDOW / 2 or now - self._cut_at < WINDOW:
            floor = SEEN * accepted / WINDOW  # what it took within the last second it allows
        if now - self._cut_at < WINDOW:  # a window may still be refusing what came before
            floor = max(floor, MIN_FACTOR * self._w_max)
            if not self._taken and now - self._last_success < CLOSED_FOR:
                # Nothing taken since the last cut, whatever the rate: a window still full
                # of what came before, not a lower limit. No lower than what it took then.
                floor = max(floor, min(self._w_max, self._took))
        if self._taken:
            self._took = SEEN * accepted / WINDOW
        between = self._between_cuts(now, noise)
        if between is not None and AGREE * estimate <= between < estimate:
            estimate = between  # sent above the limit all along: the finer measure
        self._w_max = max(MIN_RATE, min(current, estimate), floor)
        self._curve = self._w_max * BETA
        self._cut(now)
        self.reason = f"throttled at {current:,.1f}/s"
        if retry_after and self._curve <= MIN_RATE:
            retry_after = min(retry_after, self.retry_max)
            self._pause_until(now, now + retry_after)
            self.reason = f"throttled at the floor: pausing {retry_after:.2f}s"

    def _between_cuts(self, now: float, noise: float) -> float | None:
        """The limit, from what the server took between the last cut and this one: a
        bucket that overflowed at both has let through its rate times the time between
        (its burst is spent at both ends). None when that span says nothing: too short,
        or broken by a pause (no call was sent for part of it)."""
        span = now - self._cut_at  # inf before the first cut
        if not MIN_BETWEEN <= span < math.inf or self._resume_at > self._cut_at:
            return None
        return self._taken / (1.0 - noise) / span  # what it refuses at random, added back

    def _outage(self) -> None:
        """A failure (a 503 among nothing but errors, a 5xx, a timeout): the 503s that cut
        the rate since the last success were an outage (the breaker's business), not
        load shed. Undo those cuts, so the crawl resumes at its pace when the server is
        back."""
        if (self._curve, self._w_max, self._cut_at) != self._at_success:
            self._curve, self._w_max, self._cut_at = self._at_success
            self.reason = "an outage, not throttling: the rate from before it"
            self._set_rate(self.clock())

    def _noise(self) -> float:
        """The share the server refused at the last few cuts, at least: refused whatever
        the rate, so not a sign of sending too fast."""
        return min(self._shares) if len(self._shares) == self._shares.maxlen else 0.0

    def _current(self, now: float) -> float:
        """The rate the server saw when it refused: what was really sent over the last
        second of activity, or the rate in force if that is lower (a wake-up burst after
        a Retry-After is spread by the bucket, and says nothing about a rate above it)."""
        sending = self._meter.rates(now)[0]
        if self._rate is not None:
            sending = min(sending, self._rate)
        return max(MIN_RATE, sending)

    def _grow(self, now: float) -> None:
        paused = self._paused_since_cut - max(0.0, self._resume_at - now)  # so far
        t = now - self._cut_at - paused - K
        curve = self._w_max * (1 + CUBIC_SCALE * t * t * t)
        if t > PLATEAU:  # no refusal for a while past the limit: probe faster, doubling
            curve = max(curve, self._w_max * 2 ** ((t - PLATEAU) / DOUBLING))
        sending = self._meter.rates(now)[0]
        cap = max(GROWTH_CAP * sending, self._w_max)
        if self._ending(now):
            cap = min(cap, HOLD * self._w_max)
        self._curve = max(MIN_RATE, min(curve, cap, self.ceiling))
        if self._curve >= self._w_max and self.reason.startswith("throttled"):
            self.reason = f"back to {self._w_max:,.1f}/s, probing higher"

    def expect(self, queries: float) -> None:
        """How many calls the work left will take (an estimate; the runner says it now and
        then). Near the end, probing above the limit stops: a refused probe costs its
        call a Retry-After, and there is no work left to gain a faster rate on."""
        with self._lock:
            self._work_left = (self.clock(), queries)

    def _ending(self, now: float) -> bool:
        """True if the work left, as last said, takes under ``ENDGAME`` seconds at the
        limit last measured."""
        if self._work_left is None:
            return False
        said, queries = self._work_left
        rate = self._w_max
        return queries - (now - said) * rate < ENDGAME * rate  # less the calls made since

    def _follow_headers(self, now: float, sent: float, limits: RateLimits, in_flight: int) -> None:
        remaining, reset = limits.remaining, limits.reset
        reset = min(reset, MAX_RESET) if reset is not None else None
        if remaining is not None and reset is not None and reset > 0:
            if remaining <= 0 and reset > self.retry_max:  # a quota closed
                self._asked(now, reset, f"rate-limit headers: none left, reset in {reset:.0f}s")
                self._header_rate = None
            elif remaining <= 0:  # never send into Remaining: 0 before the reset
                if self._header_rate is None and sent >= self._cut_at:
                    # Run dry while they were not pacing the calls: sent well above what
                    # the server allows, so a cut; a deep one unless the fall measured it.
                    drains = self._drain_rate(now)
                    self._budget_cut(now, drains, "none left", MIN_FACTOR if drains is None else 1)
                if self._resume_at < now + reset:
                    self._pause_until(now, now + reset)
                    self.reason = f"headers: no call left, reset in {reset:.2f}s"
                self._header_rate = None
            else:
                self._follow_remaining(now, remaining, reset, in_flight)
            self._header_until = now + reset
        elif limits.limit is not None and limits.window:
            self._header_rate = limits.limit / limits.window
            self._header_until = now + limits.window
            self.reason = f"headers: {limits.limit:g} per {limits.window:g}s"

    def _follow_remaining(self, now: float, remaining: float, reset: float, in_flight: int) -> None:
        """Some calls left: what is left, spread to the reset, is the ceiling; none once the
        headers proved they understate (``Remaining`` held while calls went out faster), and
        then, when it falls, a cut to the rate the budget drains at."""
        trend = self._remaining
        if trend and remaining - trend[-1][1] >= max(FALL_CALLS, FALL_SHARE * remaining, in_flight):
            trend.clear()  # refilled at once (a new window): what came before was another budget
        trend.append((now, remaining, self._successes))
        while trend[0][0] < now - TREND_WINDOW:
            trend.popleft()
        answers, _, active = self._meter.counts(now)
        sending = answers / active if active >= MIN_TREND else 0.0  # none read from one answer
        spread = max(0.0, remaining - max(0, in_flight - 1)) / reset
        if self._curve is None:  # headers first seen: grow from the rate answers come at
            self._w_max = self._curve = max(MIN_RATE, self._meter.rates(now)[0], spread)
            self._cut_at = now - K - PLATEAU  # past the plateau: probing above it now
            self._paused_since_cut = 0.0
        span = now - trend[0][0]
        peak = max(value for _, value, _ in trend)
        drop = peak - remaining  # a fall of a call or two is the headers' rounding, not a trend
        if span < MIN_TREND:  # too soon to read a trend: no ceiling yet
            self._header_rate = None
            return
        if drop < max(FALL_CALLS, FALL_SHARE * peak):
            # Holding. Once sent at well above what they say and still holding, they
            # understate (for good): no ceiling; nor until they have held for a whole
            # window (calls would wait on what may prove a description in whole seconds);
            # else what is left, spread to the reset.
            held = span >= 0.9 * TREND_WINDOW  # for a whole window, not a start-up burst
            self._understated |= held and sending > UNDERSTATED * spread
            capped = held and not self._understated
            self._header_rate = max(MIN_RATE, spread) if capped else None
            self.reason = f"headers: {remaining:g} left, holding"
            return
        drains = self._drain_rate(now)  # None until the fall has lasted long enough to say
        # A window falls by every call taken; a budget that falls by fewer refills as it
        # goes, faster than what is left spread to the reset: those understate too.
        self._understated |= drains is not None and drains > UNDERSTATED * max(MIN_RATE, spread)
        if not self._understated and spread <= 0 and reset <= self.retry_max:
            # What is left is in flight already: the next call goes after the reset (at the
            # floor's rate it would, and every slot reserved meanwhile even later).
            self._pause_until(now, now + reset)
            self._header_rate = None
            self.reason = f"headers: {remaining:g} left, all in flight; reset in {reset:.2f}s"
            return
        if not self._understated:  # a window draining as it should: what is left, spread
            self._header_rate = max(MIN_RATE, spread)
            self.reason = f"headers: {remaining:g} left in {reset:.2f}s"
            return
        self._header_rate = None
        sending = self._rate if self._rate is not None else self._current(now)
        if drains is not None and drains < sending and now - self._cut_at >= K:
            self._budget_cut(now, drains, f"{remaining:g} left, falling")

    def _drain_rate(self, now: float) -> float | None:
        """The rate a falling budget is refilled at: the server's limit. Since the fall began
        (the first answer after the last that said the most left: before it the budget may
        have been full, refilling nothing), the calls it took less what it fell by, over
        the time between. Both ends are answers that first said a new value, so the whole
        calls they say were crossed there. None when that span is too short to say."""
        trend = self._remaining
        if not trend:
            return None
        peak = max(value for _, value, _ in trend)
        last_peak = max(n for n, entry in enumerate(trend) if entry[1] == peak)
        if last_peak + 1 >= len(trend):
            return None
        start, top, taken = trend[last_peak + 1]
        end, last, now_taken = trend[-1]
        if end - start < MIN_TREND:
            return None
        return max(MIN_RATE, (now_taken - taken - (top - last)) / (end - start))

    def _budget_cut(self, now: float, limit: float | None, why: str, factor: float = 1) -> None:
        """Understated headers fell (or ran out): the rate was above the server's, so cut as
        a throttle would, to ``BETA`` of the rate the budget drains at (or of the rate in
        force, if that is unknown), so what is left refills before it runs out."""
        current = self._rate if self._rate is not None else self._current(now)
        limit = min(limit, current) if limit is not None else current
        self._w_max = max(MIN_RATE, factor * limit)
        self._curve = self._w_max * BETA
        self._cut(now)
        self.reason = f"headers: {why}, at {limit:,.1f}/s"

    def _cut(self, now: float) -> None:
        """The curve starts again from a cut made now: feedback counts from here, and the
        slots handed out at the old rate are void."""
        self._cut_at = now
        self._paused_since_cut = 0.0
        self._since_cut = [0, 0]
        self._taken = 0
        self._void_slots(now)
        self.cuts += 1

    def _set_rate(self, now: float) -> None:
        """The rate in force: the lowest of the curve, the headers and the ceiling."""
        if not self.adaptive:
            rate: float | None = None if math.isinf(self.ceiling) else self.ceiling
        else:
            candidates = [self.ceiling]
            if self._curve is not None:
                candidates.append(self._curve)
            if self._header_rate is not None and now < self._header_until:
                candidates.append(self._header_rate)
            lowest = min(candidates)
            rate = None if math.isinf(lowest) else lowest
        if rate is not None and self._rate is None:
            self._tat = max(self._tat, now)
        old = self._rate
        if old is not None and (rate is None or rate > RESPACE * old) and self._tat > now:
            self._void_slots(now)  # slots handed out at a rate far below: taken anew ...
            self._last_go = min(self._last_go, now)  # ... from now, not from the last of them
        if rate is not None and self._respace:
            self._tat = max(self._last_go + 1.0 / rate, self._tat if self._resume_at > now else 0)
        self._respace = False
        self._rate = rate
        self._limited = rate is not None or self._resume_at > now
        self._log_change(rate)

    def _log_change(self, rate: float | None) -> None:
        before = self._logged
        if rate is None or (before is not None and abs(rate - before) < LOG_CHANGE * before):
            return
        self._logged = rate
        log.info("send rate %.1f/s (%s)", rate, self.reason)
