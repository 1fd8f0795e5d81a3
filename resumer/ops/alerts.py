"""Alerts: rules over the run's health that fire and resolve, once per change.

Rules (each off unless set in ``[alerts]``): the error rate over a window,
the breaker open for longer than a duration, no progress for a duration (a
stall), failed nodes over a count. ``Alerts.evaluate`` is called by the
coordinator about twice a second with plain figures; a rule that changes
state is logged (ERROR when firing, WARNING when resolved) and, with a
``webhook``, POSTed as JSON by a sender thread that retries and never blocks
the crawl. States are kept in the checkpoint so a resume does not fire again
what already fired.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from resumer.errors import describe
from resumer.policies.gate import CallOutcome

log = logging.getLogger(__name__)

FIRING, RESOLVED = "firing", "resolved"
MIN_CALLS = 10  # calls in the window before the error rate is judged
WEBHOOK_ATTEMPTS = 5
WEBHOOK_TIMEOUT = 10.0  # seconds per POST


@dataclass(frozen=True, slots=True)
class Figures:
    """What the rules look at, at one moment."""

    now: float  # monotonic seconds
    breaker: str
    failed_nodes: int
    last_progress: float  # monotonic seconds of the last query stored


@dataclass(frozen=True, slots=True)
class Rules:
    error_rate: float  # 0 = off; fraction of calls that failed or were throttled
    window: float  # seconds over which the error rate is measured
    breaker_open: float  # 0 = off; seconds
    stall: float  # 0 = off; seconds
    failed_nodes: int  # 0 = off

    @property
    def any(self) -> bool:
        return bool(self.error_rate or self.breaker_open or self.stall or self.failed_nodes)


class Alerts:
    """Evaluates the rules and reports changes.

    >>> alerts = Alerts(rules, job="job.toml", states={}, webhook=None)  # doctest: +SKIP
    >>> alerts.observe_call(2, CallOutcome("failure", status=503), 0.1)  # doctest: +SKIP
    >>> alerts.evaluate(figures)  # doctest: +SKIP
    """

    def __init__(
        self,
        rules: Rules,
        *,
        job: str,
        states: Mapping[str, str],
        webhook: str | None,
        clock: Callable[[], float] = time.monotonic,
        post: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.rules = rules
        self.job = job
        self.states = dict(states)
        self.clock = clock
        self._calls: deque[tuple[float, bool]] = deque()  # (when, bad), within the window
        self._bad = 0  # how many of those went wrong
        self._lock = threading.Lock()
        self._open_since: float | None = None
        self._sender = _Sender(webhook, post) if webhook else None

    def observe_call(self, level: int, outcome: CallOutcome, seconds: float) -> None:
        """A gate observer: remember each call's time and whether it went wrong."""
        bad = outcome.kind in ("failure", "throttle")
        with self._lock:
            self._calls.append((self.clock(), bad))
            self._bad += bad

    def evaluate(self, figures: Figures) -> bool:
        """Check every rule; report those that changed. True if a state changed."""
        changed = False
        for name, firing, value, threshold in self._checks(figures):
            state = FIRING if firing else RESOLVED
            if self.states.get(name, RESOLVED) != state:
                self.states[name] = state
                self._report(name, state, value, threshold)
                changed = True
        return changed

    def _checks(self, figures: Figures) -> list[tuple[str, bool, float, float]]:
        """(rule, firing, value, threshold) for each rule that can be judged now."""
        rules = self.rules
        checks: list[tuple[str, bool, float, float]] = []
        if rules.error_rate:
            rate, calls = self._error_rate(figures.now)
            if calls >= MIN_CALLS:  # too few calls (say, the breaker holds them): no verdict
                checks.append(("error_rate", rate > rules.error_rate, rate, rules.error_rate))
        if rules.breaker_open:
            if figures.breaker == "closed":
                self._open_since = None
            elif self._open_since is None:
                self._open_since = figures.now
            open_for = 0.0 if self._open_since is None else figures.now - self._open_since
            checks.append(
                ("breaker_open", open_for > rules.breaker_open, open_for, rules.breaker_open)
            )
        if rules.stall:
            idle = figures.now - figures.last_progress
            checks.append(("stall", idle > rules.stall, idle, rules.stall))
        if rules.failed_nodes:
            count = figures.failed_nodes
            checks.append(
                (
                    "failed_nodes",
                    count > rules.failed_nodes,
                    float(count),
                    float(rules.failed_nodes),
                )
            )
        return checks

    def _error_rate(self, now: float) -> tuple[float, int]:
        with self._lock:
            while self._calls and now - self._calls[0][0] > self.rules.window:
                self._bad -= self._calls.popleft()[1]
            calls = len(self._calls)
            return (self._bad / calls if calls else 0.0), calls

    def _report(self, name: str, state: str, value: float, threshold: float) -> None:
        message = f"alert {name} {state}: {value:.3g} (threshold {threshold:.3g})"
        if state == FIRING:
            log.error(message)
        else:
            log.warning(message)
        if self._sender is not None:
            self._sender.send(
                {
                    "alert": name,
                    "state": state,
                    "value": value,
                    "threshold": threshold,
                    "job": self.job,
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "message": message,
                }
            )

    def close(self) -> None:
        """Deliver what is queued (bounded), then stop the sender."""
        if self._sender is not None:
            self._sender.close()


class _Sender:
    """POSTs alert documents from a thread of its own, retrying each a few times; no
    error ends the thread (one that is not HTTP is logged, and the next alert sent)."""

    def __init__(self, url: str, post: Callable[[str, dict[str, Any]], None] | None) -> None:
        self.url = url
        self._post = post or _post_json
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()

    def send(self, document: dict[str, Any]) -> None:
        self._queue.put(document)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=WEBHOOK_TIMEOUT * 2)

    def _loop(self) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(WEBHOOK_ATTEMPTS),
            wait=wait_exponential(multiplier=0.5, max=10),
            retry=retry_if_exception_type(httpx.HTTPError),
            reraise=True,
        )
        while (document := self._queue.get()) is not None:
            try:
                retrying(self._post, self.url, document)
            except httpx.HTTPError as error:
                log.error("alert webhook %s failed: %s", self.url, error)
            except BaseException as error:  # this thread has no caller to hand it to
                # Anything else is a bug (ours, or a custom ``post``'s), and retrying will not
                # heal it: say so on one line, keep the traceback for DEBUG, and go on with
                # the next alert. Even a KeyboardInterrupt: signals reach the main thread
                # only, so here one is raised by code, and dying would silence every alert.
                log.warning(
                    "alert webhook %s: could not send the %s alert %s (%s)",
                    self.url,
                    document.get("alert"),
                    document.get("state"),
                    describe(error),
                )
                log.debug("alert webhook %s: the error's traceback", self.url, exc_info=error)


def _post_json(url: str, document: dict[str, Any]) -> None:
    response = httpx.post(
        url,
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
        timeout=WEBHOOK_TIMEOUT,
    )
    response.raise_for_status()
