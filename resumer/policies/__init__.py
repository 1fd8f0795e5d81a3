"""Policies around each HTTP call, as plain objects with injected time.

For every call, in this order (``gate.Gate``): the stop flag → the breaker
(waits while open) → the pacer (the send rate, and any pause the server asked
for) → a concurrency slot → HTTP. Around a whole query, the retry policy (``retry.Retrier``).

Modules: ``gate`` (the order above), ``breaker``, ``pacer`` (the send rate and
what rate-limit headers say), ``concurrency`` (the in-flight limit, fixed or
adaptive), ``retry`` (backoff with full jitter, parking a throttled query) and
``defaults`` (what the job file's keys default to, named beside the policies).

Knows nothing of the database, HTTP or the job file's layout. Imports nothing of
resumer but ``errors`` and ``model``.
"""
