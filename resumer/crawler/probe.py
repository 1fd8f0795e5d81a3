"""``resumer probe``: try a job file against the real API before a night-long crawl.

Loads the roots, then queries a few nodes per level down to the leaf level,
recording for each call the request (secrets masked), status, latency, how
many items it mapped and the first few (each marked with the ``[[crawl.leaf]]`` or
``[[crawl.drop]]`` rule that matches it: those are not queried further). Nothing is
stored: no database is created. The caller renders the reports.

Tested by tests/integration/test_probe.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from resumer.errors import QueryError
from resumer.http.tls import ssl_context
from resumer.job.bound import bind
from resumer.job.settings import Job
from resumer.model import Item, Task
from resumer.policies.gate import CallOutcome
from resumer.query.client import Client

SAMPLES = 3  # mapped items shown per call


@dataclass
class Call:
    """One probe call."""

    request: str  # method and URL, secrets masked
    status: int | None
    seconds: float
    items: list[Item] = field(default_factory=list)
    error: str | None = None
    decided: str = (
        ""  # with [[response.rule]]s, what decided the answer: "rule 2: retry", "no rule"
    )


@dataclass
class LevelReport:
    level: int
    calls: list[Call] = field(default_factory=list)
    problem: str | None = None  # why this level mapped nothing

    @property
    def mapped(self) -> int:
        return sum(len(call.items) for call in self.calls)


class _Recorder:
    """httpx event hooks noting the last request and status, and a gate observer noting
    what decided its answer."""

    def __init__(self) -> None:
        self.request = ""
        self.status: int | None = None
        self.decided = ""

    def on_request(self, request: httpx.Request) -> None:
        self.request, self.status, self.decided = f"{request.method} {request.url}", None, ""

    def on_response(self, response: httpx.Response) -> None:
        self.status = response.status_code

    def on_call(self, level: int, outcome: CallOutcome, seconds: float) -> None:
        if outcome.rule is not None:
            self.decided = f"rule {outcome.rule}: {outcome.then}"
        elif outcome.status is not None:
            self.decided = "no rule"  # the status decided


def probe(job: Job, per_level: int) -> list[LevelReport]:
    """Reports for level 1 (the roots) and each queried level below it; ``ConfigError``
    when the job cannot run (an undefined ``${VAR}``, a certificate file)."""
    bound = bind(job)
    recorder = _Recorder()
    hooks = {"request": [recorder.on_request], "response": [recorder.on_response]}
    with httpx.Client(
        timeout=job.request.timeout,
        event_hooks=hooks,  # type: ignore[arg-type]
        verify=ssl_context(job.request.tls, origin=job.origin),  # as a run would call
        proxy=bound.proxy,
    ) as http:
        client = Client(bound, http)
        if job.response.rules:  # say what decided each answer
            client.gate.observers.append(recorder.on_call)
        roots = LevelReport(1)
        began = time.monotonic()
        try:
            items = list(client.load_roots())
            error = None
        except QueryError as exc:
            items, error = [], str(exc)
        source = recorder.request or f"file {job.source.file}"
        roots.calls.append(
            Call(
                client.redactor.redact(source),
                recorder.status,
                time.monotonic() - began,
                items,
                error,
                recorder.decided,
            )
        )
        if not items:
            roots.problem = error or "the source has no level-1 nodes"
        reports = [roots]
        queried = [i for i in items if not (i.leaf or i.drop)]
        frontier = [Task(0, 1, i.id, i.name, i.type, "") for i in queried[:per_level]]
        for level in job.queried_levels:
            report = LevelReport(level + 1)
            children: list[Task] = []
            for task in frontier:
                began = time.monotonic()
                try:
                    found, error = list(client.query(task, job.level(level).timeout)), None
                except QueryError as exc:
                    found, error = [], str(exc)
                request = client.redactor.redact(recorder.request)
                took = time.monotonic() - began
                report.calls.append(
                    Call(request, recorder.status, took, found, error, recorder.decided)
                )
                children += [
                    Task(0, level + 1, c.id, c.name, c.type, task.id)
                    for c in found
                    if not (c.leaf or c.drop)  # a run would not query these
                ]
            if not report.mapped:
                errors = [call.error for call in report.calls if call.error]
                report.problem = (
                    errors[0]
                    if errors
                    else (
                        f"no children among the first {len(frontier)} node(s) of level {level}"
                        if frontier
                        else f"nothing to query: level {level} has no node to probe"
                    )
                )
            reports.append(report)
            frontier = children[:per_level]
        return reports
