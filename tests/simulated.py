"""A crawl against a rate-limited server in simulated time: the pacer's test bench.

Workers, a server with nginx's leaky bucket (``limit_req ... nodelay``) and
a latency, all driven by one event queue on a virtual clock, so a pacing rule
is tried over minutes of traffic in milliseconds, the same way every time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from resumer.policies.pacer import Pacer, RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LeakyBucket:
    """nginx's limit_req with nodelay: ``burst + 1`` at once, then one per 1/rate s."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.excess: float | None = None
        self.last = 0.0

    def admit(self, now: float) -> bool:
        if self.excess is None:
            self.excess, self.last = 0.0, now
            return True
        excess = max(0.0, self.excess - self.rate * (now - self.last)) + 1
        if excess > self.burst:
            return False
        self.excess, self.last = excess, now
        return True

    def limits(self, now: float, style: str = "window") -> RateLimits:
        """Headers as a 1 s rolling window: what may still be sent within the next second;
        or (``style="bucket"``) as the fake API's "bucket" style, in whole seconds: the
        calls the bucket takes at once now, and the seconds until it is empty (at least 1)."""
        excess = max(0.0, (self.excess or 0.0) - self.rate * (now - self.last))
        if style == "bucket":
            left = max(0, math.floor(self.burst - excess + 1e-9))
            reset = max(1, math.ceil(excess / self.rate - 1e-9)) if self.rate > 0 else 1
            return RateLimits(limit=self.burst, remaining=left, reset=reset)
        return RateLimits(remaining=max(0.0, self.burst - excess + self.rate), reset=1.0)


class FixedWindow:
    """``rate`` calls in each whole second, its headers the calls left and the time to its end."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.second = -1
        self.count = 0

    def admit(self, now: float) -> bool:
        if math.floor(now) != self.second:
            self.second, self.count = math.floor(now), 0
        accepted = self.count < self.rate
        self.count += accepted
        return accepted

    def limits(self, now: float, style: str = "") -> RateLimits:
        left = self.rate - self.count if math.floor(now) == self.second else self.rate
        return RateLimits(limit=self.rate, remaining=left, reset=math.floor(now) + 1 - now)


class SlidingWindow:
    """``rate`` calls in any second, refused calls counted too (as HAProxy's
    ``http_req_rate(1s)`` counts them): a client over the limit keeps the window full."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.calls: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self.calls and self.calls[0] <= now - 1.0:
            self.calls.popleft()
        accepted = len(self.calls) < self.rate
        self.calls.append(now)
        return accepted

    def limits(self, now: float, style: str = "") -> RateLimits:
        return RateLimits()


class SwingingWindow:
    """HAProxy's ``sc_http_req_rate`` over 1 s periods: the calls of this period plus the
    last period's, weighted by the share of this period still to come; every call counts,
    refused ones too, and one over ``rate`` is refused."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.period = 0
        self.current = self.previous = 0

    def admit(self, now: float) -> bool:
        period = math.floor(now)
        if period != self.period:
            self.previous = self.current if period == self.period + 1 else 0
            self.period, self.current = period, 0
        self.current += 1
        return self.current + self.previous * (1 - (now - period)) <= self.rate

    def limits(self, now: float, style: str = "") -> RateLimits:
        return RateLimits()


@dataclass
class Server:
    """``rate(t)`` calls/s allowed (0: no limit), ``noise`` a share refused at random; nginx's
    bucket, or (``fixed_window``) a fixed window of 1 s, or a ``sliding_window``."""

    rate: Callable[[float], float] = lambda t: 100.0
    burst: int = 10
    latency: float = 0.001
    noise: float = 0.0
    headers: bool = False
    header_style: str = "window"  # or "bucket": LeakyBucket.limits
    fixed_window: bool = False
    sliding_window: bool = False
    haproxy_window: bool = False
    seed: int = 1
    bucket: LeakyBucket | FixedWindow | SlidingWindow | SwingingWindow = field(init=False)

    def __post_init__(self) -> None:
        rate = self.rate(0.0)
        self.bucket: LeakyBucket | FixedWindow | SlidingWindow | SwingingWindow
        self.bucket = LeakyBucket(rate, self.burst)
        if self.fixed_window:
            self.bucket = FixedWindow(rate)
        elif self.sliding_window:
            self.bucket = SlidingWindow(rate)
        elif self.haproxy_window:
            self.bucket = SwingingWindow(rate)
        self._rng = random.Random(self.seed)

    def answer(self, now: float) -> tuple[bool, RateLimits | None]:
        """(accepted, headers) for a call arriving at ``now``."""
        self.bucket.rate = self.rate(now)
        accepted = self.bucket.rate <= 0 or self.bucket.admit(now)
        if accepted and self.noise and self._rng.random() < self.noise:
            accepted = False
        return accepted, self.bucket.limits(now, self.header_style) if self.headers else None


@dataclass
class Result:
    wall: float
    successes: int
    throttles: int
    sent: list[tuple[float, bool]]  # (arrival at the server, accepted)
    pacer: Pacer

    @property
    def throttled_share(self) -> float:
        return self.throttles / max(1, self.successes + self.throttles)

    def accepted_between(self, start: float, end: float) -> float:
        """Accepted calls a second between two times."""
        return sum(1 for t, ok in self.sent if ok and start <= t < end) / (end - start)


def crawl(
    server: Server,
    *,
    queries: int = 0,
    tree: tuple[int, ...] = (),
    workers: int = 12,
    cpu: float = 0.0007,
    retry_after: float | None = 1.0,
    pacer: Pacer | None = None,
    clock: Clock | None = None,
    tell_work_left: float = 0.5,
) -> Result:
    """Successful queries by ``workers`` threads sharing one CPU (``cpu`` s a call).

    ``queries``: that many, every worker always busy. ``tree``: a crawl, as
    resumer's runner does it: ``tree[0]`` level-1 nodes, each node of level n
    with ``tree[n]`` children, a pool of ``workers // len(tree)`` threads per
    level that idle until their level has work; a refused query is parked
    for its Retry-After (or a backoff) while its worker goes on with another;
    it ends when every node is queried. Every ``tell_work_left`` seconds the
    pacer hears how many queries are left, as the runner tells it (0: never).
    """
    clock = clock or Clock()
    run = _Crawl(server, queries, tree, workers, pacer or Pacer(clock=clock), clock)
    run.cpu, run.retry_after, run.tell_every = cpu, retry_after, tell_work_left
    return run.run()


class _Crawl:
    """One simulated crawl: workers, a CPU, the server, on one event queue."""

    def __init__(
        self,
        server: Server,
        queries: int,
        tree: tuple[int, ...],
        workers: int,
        pacer: Pacer,
        clock: Clock,
    ) -> None:
        self.server, self.tree, self.pacer, self.clock = server, tree, pacer, clock
        self.cpu, self.tell_every = 0.0007, 0.5
        self.retry_after: float | None = 1.0
        # (time, order, what, worker, slot epoch or pacing time, send time)
        self.events: list[tuple[float, int, str, int, float, float]] = []
        self.seq = 0
        self.cpu_free = 0.0
        self.successes = self.throttles = self.in_flight = 0
        self.sent: list[tuple[float, bool]] = []
        self.rng = random.Random(7)
        per_level = max(1, workers // len(tree)) if tree else workers
        self.level_of = [w // per_level if tree else 0 for w in range(per_level * (len(tree) or 1))]
        self.pending = [tree[0], *([0] * (len(tree) - 1))] if tree else [queries]
        self.idle: list[list[int]] = [[] for _ in self.pending]
        self.holding = [False] * len(self.level_of)
        self.goal = sum(math.prod(tree[: n + 1]) for n in range(len(tree))) if tree else queries
        self.said = -math.inf

    def push(
        self, when: float, what: str, worker: int, slot: float = 0.0, extra: float = 0.0
    ) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, what, worker, slot, extra))

    def add_work(self, when: float, level: int, count: int) -> None:
        self.pending[level] += count
        while self.idle[level]:
            self.push(when, "ready", self.idle[level].pop())

    def tell(self, when: float) -> None:
        if self.tell_every and when - self.said >= self.tell_every:
            self.pacer.expect(self.goal - self.successes)  # as the runner says it: now and then
            self.said = when

    def run(self) -> Result:
        for worker in range(len(self.level_of)):
            self.push(0.0, "ready", worker)
        while self.events and self.successes < self.goal:
            when, _, what, worker, slot, extra = heapq.heappop(self.events)
            self.clock.now = when
            self.tell(when)
            if what == "due":  # a parked query's wait is over: back to its level (``worker``)
                self.add_work(when, worker, 1)
            elif what == "answer":
                self.answer(when, worker, slot, extra)
            else:
                self.send(when, what, worker, slot)
        return Result(self.clock.now, self.successes, self.throttles, self.sent, self.pacer)

    def send(self, when: float, what: str, worker: int, slot: float) -> None:
        """A worker ready for its next query, or woken for the slot it waited for."""
        pacer = self.pacer
        if what == "ready" and not self.holding[worker]:
            level = self.level_of[worker]
            if not self.pending[level]:
                self.idle[level].append(worker)
                return
            self.pending[level] -= 1
            self.holding[worker] = True
        voided = what == "go" and slot != pacer.epoch
        if what == "ready" or voided:
            wait = pacer.reserve() if pacer._limited else 0.0
            if wait > 0:
                self.push(when + wait, "go", worker, pacer.epoch)
                return
        self.cpu_free = max(self.cpu_free, when) + self.cpu
        self.in_flight += 1
        self.push(self.cpu_free + self.server.latency, "answer", worker, when, self.cpu_free)

    def answer(self, when: float, worker: int, sent_at: float, left_cpu: float) -> None:
        accepted, limits = self.server.answer(left_cpu + self.server.latency / 2)
        self.sent.append((left_cpu + self.server.latency / 2, accepted))
        self.pacer.record(
            sent=sent_at,
            throttled=not accepted,
            success=accepted,
            retry_after=self.retry_after,
            limits=limits,
            in_flight=self.in_flight,
        )
        self.in_flight -= 1
        self.holding[worker] = False
        level = self.level_of[worker]
        if accepted:
            self.successes += 1
            if self.tree and level + 1 < len(self.tree):
                self.add_work(when, level + 1, self.tree[level + 1])
        else:  # parked, as the runner does: the worker goes on
            self.throttles += 1
            backoff = self.retry_after
            if backoff is None:
                backoff = self.rng.uniform(0, 0.5)
            self.push(when + backoff, "due", level)
        self.push(when, "ready", worker)
