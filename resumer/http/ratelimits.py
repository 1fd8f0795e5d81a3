"""Rate-limit headers read: ``Retry-After``, and the ``RateLimit`` / ``X-RateLimit``
families, turned into seconds to wait and a ``policies.RateLimits``.

Reading only: what to do with a wait or a limit is the policies' business
(``policies.pacer``, ``policies.retry``). This module sends nothing.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from typing import TYPE_CHECKING

from resumer.policies.pacer import RateLimits

if TYPE_CHECKING:
    import httpx


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


_RATE_PREFIXES = (b"ratelimit", b"x-ratelimit")


def parse_rate_limits(headers: httpx.Headers, now: float | None = None) -> RateLimits | None:
    """What rate-limit headers say, in any of the common forms; None when there are none.

    ``RateLimit-Limit/-Remaining/-Reset`` and ``X-RateLimit-*`` (the reset in
    seconds, or as a Unix time when it is larger than a year of seconds), and
    the IETF drafts' structured ``RateLimit: r=..;t=..`` (or the older
    ``limit=.., remaining=.., reset=..``) with ``RateLimit-Policy: q=..;w=..``.
    """
    found: dict[str, str] = {}
    for name, value in headers.raw:  # only the few named so are decoded: most answers have none
        lower = name.lower()
        if lower.startswith(_RATE_PREFIXES):
            found[lower.decode("latin-1").removeprefix("x-")] = value.decode(headers.encoding)
    if not found:
        return None
    fields = _structured(found.get("ratelimit", "")) | _structured(
        found.get("ratelimit-policy", "")
    )
    remaining = _number(found.get("ratelimit-remaining", fields.get("r", fields.get("remaining"))))
    reset = _number(found.get("ratelimit-reset", fields.get("t", fields.get("reset"))))
    limit = _number(found.get("ratelimit-limit", fields.get("q", fields.get("limit"))))
    window = _number(fields.get("w"))
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = max(0.0, reset - (time.time() if now is None else now))
    if remaining is None and limit is None:
        return None
    return RateLimits(remaining=remaining, reset=reset, limit=limit, window=window)


_EPOCH_THRESHOLD = 365 * 86400.0  # a reset larger than this is a Unix time, not seconds


def _structured(value: str) -> dict[str, str]:
    """``"name";r=5;t=10, ...`` or ``limit=10, remaining=5`` → {"r": "5", ...} (the first
    policy's figures win)."""
    out: dict[str, str] = {}
    for part in value.replace(",", ";").split(";"):
        key, sep, item = part.strip().partition("=")
        if sep and key not in out:
            out[key.strip().lower()] = item.strip().strip('"')
    return out


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
