"""The gate every call passes: a stop refuses a slot, a slot is freed however the call ends,
and on the way out the gate tells the observers and the pacer how the call went and when it
was sent, so a throttle after paced calls cuts the send rate."""

from __future__ import annotations

import threading

import pytest

from resumer.policies.concurrency import ConcurrencyLimiter
from resumer.policies.gate import Gate
from resumer.policies.pacer import Pacer
from resumer.policies.retry import Stopped
from tests.simulated import Clock


def test_the_gate_tells_the_pacer_when_each_call_was_paced() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    gate = Gate(stop=threading.Event(), limiter=ConcurrencyLimiter(4), pacer=pacer, clock=clock)
    for _ in range(20):
        with gate.slot() as outcome:
            outcome.kind = "success"
        clock.now += 0.01
    with gate.slot() as outcome:
        outcome.kind = "throttle"
    assert pacer.cuts == 1
    assert pacer.rate is not None and pacer.rate < 100


def test_a_stop_refuses_the_slot_before_taking_one() -> None:
    stop = threading.Event()
    stop.set()
    limiter = ConcurrencyLimiter(2)
    gate = Gate(stop=stop, limiter=limiter, clock=Clock())
    with pytest.raises(Stopped), gate.slot():
        pytest.fail("a stopped gate let a call through")
    assert limiter.in_flight == 0


def test_a_call_that_raises_frees_its_slot_and_is_observed_as_permanent() -> None:
    """Nothing said of a call that raised: the server is not blamed, and the slot is freed."""
    limiter = ConcurrencyLimiter(1)
    gate = Gate(stop=threading.Event(), limiter=limiter, clock=Clock())
    seen: list[tuple[int, str, int | None, float]] = []
    gate.observers.append(
        lambda level, call, took: seen.append((level, call.kind, call.status, took))
    )
    with pytest.raises(RuntimeError), gate.slot(level=2):
        assert limiter.in_flight == 1
        raise RuntimeError("the caller's bug")
    assert limiter.in_flight == 0
    assert seen == [(2, "permanent", None, 0.0)]
