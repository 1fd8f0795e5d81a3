"""A crawl against a rate-limited server in simulated time: the pacer's test bench.

Workers, a server with nginx's leaky bucket (``limit_req ... nodelay``) and
a latency, all driven by one event queue on a virtual clock, so a pacing rule
is tried over minutes of traffic in milliseconds, the same way every time.
"""

from __future__ import annotations

import heapq
import math
import random
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

    def limits(self, now: float) -> RateLimits:
        """Headers as a 1 s rolling window: what may still be sent within the next second."""
        excess = max(0.0, (self.excess or 0.0) - self.rate * (now - self.last))
        return RateLimits(remaining=max(0.0, self.burst - excess + self.rate), reset=1.0)


@dataclass
class Server:
    """``rate(t)`` calls/s allowed (0: no limit), ``noise`` a share refused at random."""

    rate: Callable[[float], float] = lambda t: 100.0
    burst: int = 10
    latency: float = 0.001
    noise: float = 0.0
    headers: bool = False
    seed: int = 1
    bucket: LeakyBucket = field(init=False)

    def __post_init__(self) -> None:
        self.bucket = LeakyBucket(self.rate(0.0), self.burst)
        self._rng = random.Random(self.seed)

    def answer(self, now: float) -> tuple[bool, RateLimits | None]:
        """(accepted, headers) for a call arriving at ``now``."""
        self.bucket.rate = self.rate(now)
        accepted = self.bucket.rate <= 0 or self.bucket.admit(now)
        if accepted and self.noise and self._rng.random() < self.noise:
            accepted = False
        return accepted, self.bucket.limits(now) if self.headers else None


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
    pacer = pacer or Pacer(clock=clock)
    # (time, order, what, worker, slot epoch or pacing time, send time)
    events: list[tuple[float, int, str, int, float, float]] = []
    seq = 0
    cpu_free = 0.0
    successes = throttles = in_flight = 0
    sent: list[tuple[float, bool]] = []
    rng = random.Random(7)
    per_level = max(1, workers // len(tree)) if tree else workers
    level_of = [w // per_level if tree else 0 for w in range(per_level * (len(tree) or 1))]
    pending = [tree[0], *([0] * (len(tree) - 1))] if tree else [queries]
    idle: list[list[int]] = [[] for _ in pending]
    holding = [False] * len(level_of)
    goal = sum(math.prod(tree[: n + 1]) for n in range(len(tree))) if tree else queries

    def push(when: float, what: str, worker: int, slot: float = 0.0, extra: float = 0.0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, what, worker, slot, extra))

    for worker in range(len(level_of)):
        push(0.0, "ready", worker)
    said = -math.inf
    while events and successes < goal:
        when, _, what, worker, slot, extra = heapq.heappop(events)
        clock.now = when
        if tell_work_left and when - said >= tell_work_left:
            pacer.expect(goal - successes)  # as the runner says it: now and then
            said = when
        if what == "due":  # a parked query's wait is over: back to its level (``worker``)
            pending[worker] += 1
            while idle[worker]:
                push(when, "ready", idle[worker].pop())
            continue
        if what == "ready" and not holding[worker]:
            level = level_of[worker]
            if not pending[level]:
                idle[level].append(worker)
                continue
            pending[level] -= 1
            holding[worker] = True
        if what in ("ready", "go"):
            voided = what == "go" and slot != pacer.epoch
            if what == "ready" or voided:
                wait = pacer.reserve() if pacer._limited else 0.0
                if wait > 0:
                    push(when + wait, "go", worker, pacer.epoch)
                    continue
            cpu_free = max(cpu_free, when) + cpu
            in_flight += 1
            push(cpu_free + server.latency, "answer", worker, when, cpu_free)
            continue
        sent_at, arrived = slot, extra + server.latency / 2
        accepted, limits = server.answer(arrived)
        sent.append((arrived, accepted))
        pacer.record(
            sent=sent_at,
            throttled=not accepted,
            success=accepted,
            retry_after=retry_after,
            limits=limits,
            in_flight=in_flight,
        )
        in_flight -= 1
        if accepted:
            successes += 1
            holding[worker] = False
            level = level_of[worker]
            if tree and level + 1 < len(tree):
                pending[level + 1] += tree[level + 1]
                while idle[level + 1]:
                    push(when, "ready", idle[level + 1].pop())
            push(when, "ready", worker)
        else:
            throttles += 1
            backoff = retry_after if retry_after is not None else rng.uniform(0, 0.5)
            holding[worker] = False  # parked, as the runner does: the worker goes on
            push(when + backoff, "due", level_of[worker])
            push(when, "ready", worker)
    return Result(clock.now, successes, throttles, sent, pacer)
