"""What an answer means: the one place that decides how an HTTP answer counts.

Every answer the client gets is one of the gate's kinds (``policies.gate``):
``SUCCESS`` (a body to read), ``THROTTLE`` (busy, not broken: the send rate
drops, the breaker does not count it, the node is never failed for it),
``FAILURE`` (a transient fault: retried, counted by the breaker) or ``PERMANENT``
(the node fails at once). A 401 is neither: it is the credentials' fault, and the
client hands it to auth (renew once, else the run stops).

Plain functions of the status and what the server said: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from resumer.policies.gate import FAILURE, PERMANENT, SUCCESS, THROTTLE

__all__ = ["FAILURE", "PERMANENT", "SUCCESS", "THROTTLE", "kind_of_status"]


def kind_of_status(
    status: int,
    retry_after: float | None,
    retry_on: Collection[int],
    sheds_load: Callable[[], bool],
) -> str:
    """How an HTTP error status counts (``status`` >= 300, not 401).

    A status outside ``retry_on`` is permanent. A 503 is a throttle when it says
    when to come back (Retry-After), or when the server still accepts other calls
    (``sheds_load()``: it sheds load, as nginx's ``limit_req`` does by default); a
    503 among nothing but errors is an outage, and the breaker counts it.

    >>> kind_of_status(429, None, {429, 503}, lambda: False)
    'throttle'
    >>> kind_of_status(503, None, {429, 503}, lambda: False)
    'failure'
    >>> kind_of_status(404, None, {429, 503}, lambda: False)
    'permanent'
    """
    if status not in retry_on:
        return PERMANENT
    if status in (429, 425):
        return THROTTLE  # busy, not broken: the breaker does not count it
    if status == 503 and (retry_after is not None or sheds_load()):
        return THROTTLE
    return FAILURE if status >= 500 or status == 408 else THROTTLE
