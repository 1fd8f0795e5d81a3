"""The job's policies for one run, built from the job and shared by every thread.

Owns: turning the job's ``[crawl]``, ``[rate]``, ``[breaker]`` and ``[retry]``
settings (and each level's attempts) into the policy objects of
``resumer.policies``: the in-flight limit and its adaptive rule, the breaker, the
pacer, the gate around every call, a retrier per level; and the stop flag they
all watch.

Must not: hold state of the crawl (nodes, results, the store), or hold policy
logic of its own; that stays in ``resumer.policies``, which knows nothing of the
job file.

Tested by tests/integration/test_parking.py, tests/integration/test_watchdog.py,
tests/integration/test_pacing.py and tests/integration/test_resilience.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from resumer.job.settings import Job
from resumer.policies.breaker import CircuitBreaker
from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter
from resumer.policies.gate import Gate
from resumer.policies.pacer import Pacer
from resumer.policies.retry import Retrier, RetryPolicy


class Policies:
    """The job's policies, built once per run and shared by every thread.

    >>> policies = Policies(job)                 # doctest: +SKIP
    >>> policies.retrier(1).call(query, label)   # doctest: +SKIP
    """

    def __init__(self, job: Job, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stop = threading.Event()
        crawl = job.crawl
        self.limiter = ConcurrencyLimiter(crawl.http_concurrency)
        adaptive = (
            AdaptiveLimit(self.limiter, crawl.min_concurrency, crawl.http_concurrency, clock)
            if crawl.adaptive
            else None
        )
        self.breaker = CircuitBreaker(
            job.breaker.failure_threshold, job.breaker.reset_timeout, clock
        )
        self.pacer = Pacer(
            ceiling=job.rate.per_second,
            burst=job.rate.burst,
            adaptive=job.rate.adaptive,
            retry_max=job.retry.max,
            max_pause=job.rate.max_pause,
            clock=clock,
        )
        self.gate = Gate(
            stop=self.stop,
            limiter=self.limiter,
            breaker=self.breaker,
            pacer=self.pacer,
            adaptive=adaptive,
            clock=clock,
        )
        retry = job.retry
        self._retriers = {
            level: RetryPolicy(attempts, retry.initial, retry.max, retry.multiplier).bind(self.stop)
            for level, attempts in [
                (0, retry.attempts),
                *((n, job.level(n).attempts) for n in job.queried_levels),
            ]
        }

    def retrier(self, level: int) -> Retrier:
        return self._retriers[level]

    def health(self) -> tuple[str, int, float | None]:
        """The policies' state: the breaker's, the in-flight limit, the send rate."""
        return self.breaker.state, self.limiter.limit, self.pacer.rate
