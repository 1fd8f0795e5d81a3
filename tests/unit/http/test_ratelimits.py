"""Retry-After and rate-limit headers (``resumer.http.ratelimits``), in every common form."""

from __future__ import annotations

import httpx

from resumer.http.ratelimits import parse_rate_limits, parse_retry_after
from resumer.policies.pacer import RateLimits


def test_rate_limit_headers_are_read_in_every_common_form() -> None:
    def read(headers: dict[str, str]) -> RateLimits | None:
        return parse_rate_limits(httpx.Headers(headers), now=1_700_000_000.0)

    ietf = {"RateLimit-Limit": "100", "RateLimit-Remaining": "40", "RateLimit-Reset": "5"}
    assert read(ietf) == RateLimits(remaining=40, reset=5, limit=100)
    github = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "9"}
    github["X-RateLimit-Reset"] = "1700000030"  # a Unix time
    assert read(github) == RateLimits(remaining=9, reset=30, limit=5000)
    draft = {"RateLimit": '"default";r=7;t=2', "RateLimit-Policy": '"default";q=60;w=10'}
    assert read(draft) == RateLimits(remaining=7, reset=2, limit=60, window=10)
    older = {"RateLimit": "limit=10, remaining=3, reset=4"}
    assert read(older) == RateLimits(remaining=3, reset=4, limit=10)
    assert read({"Content-Type": "application/json"}) is None
    assert read({"RateLimit-Remaining": "soon"}) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
