"""The policies' defaults: what the job file's ``[retry]``, ``[breaker]``, ``[rate]``
and adaptive ``[crawl]`` keys default to, named once, beside the policies they set
(``job.settings`` names them for the job file). Units in the comments.

Imports nothing: the read side (``status``, ``export``) loads the job's settings,
and so this module, without loading the policies themselves.
"""

from __future__ import annotations

# [retry]: retry.RetryPolicy
DEFAULT_ATTEMPTS = 5  # calls per query in all, the first included
DEFAULT_BACKOFF_INITIAL = 0.5  # seconds: the first backoff's upper bound
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_BACKOFF_MAX = 30.0  # seconds: the largest backoff, and the cap on a Retry-After
DEFAULT_RETRY_ON = (408, 425, 429, 500, 502, 503, 504)  # HTTP statuses worth a retry

# [breaker]: breaker.CircuitBreaker
DEFAULT_FAILURE_THRESHOLD = 5  # consecutive transient failures that open the breaker
DEFAULT_RESET_TIMEOUT = 30.0  # seconds the breaker stays open before a probe call

# [rate]: pacer.Pacer
DEFAULT_RATE = 0.0  # calls a second at most; 0 = no ceiling
DEFAULT_BURST = 1  # calls the rate lets through at once
DEFAULT_PACING = True  # the send rate floats with throttles and rate-limit headers
DEFAULT_MAX_PAUSE = 900.0  # seconds: the longest wait the API may ask for that a crawl sits out

# [crawl] adaptive: concurrency.AdaptiveLimit
DEFAULT_MIN_CONCURRENCY = 1  # HTTP calls in flight at least, when the limit floats
