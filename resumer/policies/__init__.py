"""Policies around each HTTP call, as plain objects with injected time.

For every call, in this order (``gate.Gate``): the stop flag → the breaker
(waits while open) → the pacer (the send rate, and any pause the server asked
for) → a concurrency slot → HTTP. Around a whole query, the retry policy (``retry.Retrier``).

This package knows nothing of the database or of the job file's layout; its
defaults are the job file's (``settings.DEFAULT_*``), named once.
"""

from __future__ import annotations

from resumer.policies.breaker import CircuitBreaker
from resumer.policies.concurrency import AdaptiveLimit, ConcurrencyLimiter
from resumer.policies.gate import CallOutcome, Gate
from resumer.policies.pacer import Pacer, RateLimits
from resumer.policies.retry import NodeLabel, Retrier, RetryPolicy, Stopped, Throttled

__all__ = [
    "AdaptiveLimit",
    "CallOutcome",
    "CircuitBreaker",
    "ConcurrencyLimiter",
    "Gate",
    "NodeLabel",
    "Pacer",
    "RateLimits",
    "Retrier",
    "RetryPolicy",
    "Stopped",
    "Throttled",
]
