"""The alert rules with a fake clock and a fake webhook sender: each rule fires once when
its condition has held past its threshold and resolves once when it ends; what the
webhook receives is the documented JSON (README, "Alerts").

``Alerts.close`` delivers what is queued before the sender's thread ends, so a test
reads what was sent after it, without waiting."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from resumer.ops.alerts import MIN_CALLS, Alerts, Figures, Rules
from resumer.policies.gate import CallOutcome

HOOK = "http://hook.invalid/resumer"
OFF = Rules(error_rate=0, window=60, breaker_open=0, stall=0, failed_nodes=0)


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Hook:
    """The webhook's fake sender: keeps every document posted, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, url: str, document: dict[str, Any]) -> None:
        assert url == HOOK
        self.sent.append(document)

    def changes(self) -> list[tuple[str, str]]:
        return [(document["alert"], document["state"]) for document in self.sent]


def make_alerts(rules: Rules, clock: Clock, hook: Hook, **states: str) -> Alerts:
    return Alerts(rules, job="job.toml", states=states, webhook=HOOK, clock=clock, post=hook)


def at(now: float, *, breaker: str = "closed", failed: int = 0, progress: float = 0.0) -> Figures:
    return Figures(now=now, breaker=breaker, failed_nodes=failed, last_progress=progress)


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "resumer.ops.alerts"]


def test_a_stall_fires_once_past_its_duration_and_resolves_once_on_progress(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="resumer.ops.alerts")
    hook = Hook()
    alerts = make_alerts(dataclasses.replace(OFF, stall=10), Clock(), hook)
    changed = [
        alerts.evaluate(at(10.0, progress=0.0)),  # idle exactly the duration: not yet
        alerts.evaluate(at(10.5, progress=0.0)),  # past it: fires
        alerts.evaluate(at(30.0, progress=0.0)),  # still stalled: nothing new
        alerts.evaluate(at(31.0, progress=31.0)),  # a query stored: resolves
        alerts.evaluate(at(90.0, progress=85.0)),  # idle, but within the duration
    ]
    alerts.close()
    assert changed == [False, True, False, True, False]
    assert hook.changes() == [("stall", "firing"), ("stall", "resolved")]
    assert logged(caplog) == [
        (logging.ERROR, "alert stall firing: 10.5 (threshold 10)"),
        (logging.WARNING, "alert stall resolved: 0 (threshold 10)"),
    ]


def test_the_breaker_open_fires_once_past_its_duration_and_resolves_once_closed() -> None:
    hook = Hook()
    alerts = make_alerts(dataclasses.replace(OFF, breaker_open=300), Clock(), hook)
    states = [
        (at(0.0, breaker="open"), False),  # opens: the duration starts
        (at(300.0, breaker="open"), False),
        (at(312.4, breaker="half-open"), True),  # probing is not closed: still open
        (at(400.0, breaker="open"), False),
        (at(401.0, breaker="closed"), True),
        (at(402.0, breaker="open"), False),  # open again: a new duration starts
        (at(700.0, breaker="open"), False),
    ]
    assert [alerts.evaluate(figures) for figures, _ in states] == [c for _, c in states]
    alerts.close()
    assert hook.changes() == [("breaker_open", "firing"), ("breaker_open", "resolved")]
    assert hook.sent[0]["value"] == pytest.approx(312.4)


def test_the_error_rate_is_judged_over_its_window_once_enough_calls_are_in_it() -> None:
    clock, hook = Clock(), Hook()
    alerts = make_alerts(dataclasses.replace(OFF, error_rate=0.2, window=60), clock, hook)
    for _ in range(MIN_CALLS - 1):
        alerts.observe_call(1, CallOutcome("failure", status=503), 0.1)
    assert not alerts.evaluate(at(1.0))  # every call failed, but too few to judge
    alerts.observe_call(1, CallOutcome("throttle", status=429), 0.1)
    assert alerts.evaluate(at(1.0))  # MIN_CALLS calls, all bad: fires
    clock.now = 30.0
    for _ in range(MIN_CALLS):
        alerts.observe_call(1, CallOutcome("success", status=200), 0.1)
    assert not alerts.evaluate(at(30.0))  # half the window's calls bad: still firing
    assert alerts.evaluate(at(61.0))  # the bad calls have left the window: resolves
    assert not alerts.evaluate(at(62.0))
    alerts.close()
    assert hook.changes() == [("error_rate", "firing"), ("error_rate", "resolved")]
    assert [document["value"] for document in hook.sent] == [1.0, 0.0]


def test_failed_nodes_fire_once_over_the_count_and_resolve_once_under_it() -> None:
    hook = Hook()
    alerts = make_alerts(dataclasses.replace(OFF, failed_nodes=2), Clock(), hook)
    changed = [alerts.evaluate(at(t, failed=n)) for t, n in enumerate([1, 2, 3, 7, 2, 0])]
    alerts.close()
    assert changed == [False, False, True, False, True, False]
    assert hook.changes() == [("failed_nodes", "firing"), ("failed_nodes", "resolved")]


def test_a_rule_that_fired_before_a_resume_does_not_fire_again() -> None:
    hook = Hook()
    rules = dataclasses.replace(OFF, stall=10)
    alerts = make_alerts(rules, Clock(), hook, stall="firing")  # as kept in the checkpoint
    assert not alerts.evaluate(at(100.0, progress=0.0))
    assert alerts.evaluate(at(101.0, progress=101.0))
    alerts.close()
    assert hook.changes() == [("stall", "resolved")]
    assert alerts.states == {"stall": "resolved"}  # what the runner keeps in the checkpoint


def test_a_rule_that_is_off_never_fires() -> None:
    hook = Hook()
    alerts = make_alerts(OFF, Clock(), hook)
    for _ in range(2 * MIN_CALLS):
        alerts.observe_call(1, CallOutcome("failure", status=500), 0.1)
    assert not alerts.evaluate(at(10_000.0, breaker="open", failed=10_000, progress=0.0))
    alerts.close()
    assert hook.sent == []


def test_the_webhook_receives_the_documented_json() -> None:
    hook = Hook()
    alerts = make_alerts(dataclasses.replace(OFF, breaker_open=300), Clock(), hook)
    before = datetime.now(UTC).replace(microsecond=0)
    alerts.evaluate(at(0.0, breaker="open"))
    alerts.evaluate(at(312.4, breaker="open"))
    alerts.close()
    (document,) = hook.sent
    sent_at = datetime.fromisoformat(document.pop("time"))
    assert document == {
        "alert": "breaker_open",
        "state": "firing",
        "value": pytest.approx(312.4),
        "threshold": 300.0,
        "job": "job.toml",
        "message": "alert breaker_open firing: 312 (threshold 300)",
    }
    assert sent_at.utcoffset() is not None and sent_at.utcoffset() == UTC.utcoffset(None)
    assert sent_at >= before and sent_at.microsecond == 0  # to the second, in UTC


def test_without_a_webhook_changes_are_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="resumer.ops.alerts")
    rules = dataclasses.replace(OFF, failed_nodes=1)
    alerts = Alerts(rules, job="job.toml", states={}, webhook=None, clock=Clock())
    assert alerts.evaluate(at(0.0, failed=5))
    alerts.close()
    assert logged(caplog) == [(logging.ERROR, "alert failed_nodes firing: 5 (threshold 1)")]
