"""Benchmark: how well resumer keeps to a server's rate limit, against a real nginx
``limit_req``, a real HAProxy stick table and resumer's own fake API; and what a limit on
the calls served at once, a backend restarted behind nginx and a quota closing cost.

    python bench/pacing.py                  # every row, one run each
    python bench/pacing.py --repeat 3       # medians of 3 runs per row
    python bench/pacing.py --only nginx     # only the nginx rows (or: fake, haproxy)
    python bench/pacing.py --row "429 + Retry-After: 1" --only nginx   # rows by name
    python bench/pacing.py --row "at once"  # the two rows of the calls served at once
    python bench/pacing.py --rate 100       # the server's limit, calls a second (default 100)
    python bench/pacing.py --timeline       # also print each run's calls per second
    python bench/pacing.py --keep DIR       # keep every run's job, logs and checkpoint
    python bench/pacing.py --resumer DIR    # run resumer (and the fake API) from DIR

``--resumer`` measures another version without touching the checkout, for example the
last commit: ``git archive HEAD | tar -x -C /tmp/head``, then ``--resumer /tmp/head``.

The tree is 10 roots x 10 x 10 x 10: 1,110 queried nodes (levels 1-3), 11,110 nodes.
The job file is what a new user writes, only the required keys (``[source] url``,
``[request] url``, ``[response] items``): resumer's defaults for everything else (one
row adds ``[crawl] adaptive = true`` and ``http_concurrency = 64``).

nginx (skipped if it is not installed) runs in the foreground in a temporary folder and
serves the tree as static files, with ``limit_req zone=api burst=10 nodelay`` at
``--rate`` on /children only. A refusal is (a) 429 with ``Retry-After: 1``, (b) 429
without it, or (c) nginx's default 503 without it; (d) is (a) with the limit dropping to a
third at 30% of the allowed-rate time (config rewritten, SIGHUP to the master) and rising
back once 70% of the queries are answered. A fresh nginx per run; what it logs
(``$msec $status $request_uri``) gives the calls. (e) is nginx as a plain reverse proxy
(one upstream server, keep-alive) in front of the fake API (no limit, 20 ms answers),
which is killed (SIGKILL) once 30% of the queries are answered and started again on the
same port 4 s later: meanwhile nginx answers 502, and the new process listens a few
tenths of a second after its start (the measured time down is in the notes).

The fake API (``resumer fake-api``) gets the same rows with its own rate limiter
(``--rate-limit``, ``--burst``, ``--throttle-status``, ``--limit-retry-after``; the drop
and rise through ``POST /_rate``), minus the adaptive one, plus (a) with each style of
rate-limit headers (``--rate-headers ratelimit|x-ratelimit|draft|bucket``), and (a) with the
other shapes of limiter (``--limiter window``: a fixed window of 1 s announcing its reset as
a Unix time; ``--limiter sliding``: a sliding window of 1 s that counts refused calls too).
Three rows of its own have no limit on the rate: at most 8 calls served at once, 503 at
once beyond (``--limiter concurrency --rate-limit 8``, 20 ms answers), with the default
job file and with the adaptive one; and a quota (``--quota 600 --closed-for 40``): after
600 calls (54% of the queries, so that it closes once) every call is answered 429 with
``Retry-After`` the seconds left, for 40 s: longer than ``[retry] max`` (30 s), within
``[rate] max_pause`` (900 s), so the whole crawl sits it out. One second after the first
refusal, the bench runs ``resumer status --json`` on the checkpoint, as a script would.
The fake API's calls over time come
from polling ``GET /_stats`` every 50 ms, so its figures are good to a call or two and
its send rate to the poll's resolution. If the fake API lacks these options, a line says
so and its rows are skipped.

HAProxy (skipped if it is not installed) runs in the foreground (``haproxy -f cfg -db``)
in front of the fake API (no limit of its own) with a stick table counting the calls to
/children per client over the last second (``http_req_rate(1s)``, refused calls
counted too) and refusing those beyond ``--rate`` with 429 and ``Retry-After: 1``
(``http-after-response``); its log (``date(0,ms)``, status, URI, on its stdout) gives
the calls.

The restart and quota rows also run the same crawl without the fault first (in the run's
``without-fault`` folder): the seconds the fault cost are measured against it.

One run of every row takes about 15 minutes with a resumer that does not pace itself
(most rows then wait out a Retry-After every second), ``--repeat 3`` about 45; nginx's
rows are half of it. The rows of the calls served at once, the restart, the quota and
HAProxy take about 2 minutes (the quota alone 45 s).

Figures per row (medians over the repeats):

- wall s: ``resumer start`` from launch to exit, start-up included (about 0.8 s to the
  first call), with the range over the repeats; a run still going after 10 x the
  allowed-rate time is killed and shows "did not finish";
- allowed-rate s: the time a client sending exactly at the allowed rate needs for the
  1,110 queries: 1,110 / rate, or, when the limit changes, the time T at which the calls
  allowed up to T (the schedule integrated, with the actual switch times) reach 1,110.
  Rows without a limit on the rate put here the time they are measured against: with 8
  calls served at once, the ideal 1,110 x 20 ms / 8 (every slot busy); the restart and
  the quota, the wall of the same crawl without the fault plus the time the backend was
  down (measured) or the quota closed (40 s): a client that loses nothing else;
- ratio: allowed-rate s / wall s (goal >= 0.9);
- calls: calls to /children, refused ones included; throttled: those answered 429/503
  (and 502/504 behind nginx's proxy: the backend down; for the quota: the calls sent while
  it is closed); share: throttled / calls (goal <= 5%; <= 8% with the changing limit);
- start s: from launch to the first call to /children (start-up, the level-1 list);
- span s: from the first call to /children to the last;
- tail s: from the last call to /children to resumer's exit;
- peak/s: the most calls sent in any 1 s window (the client's send rate, not the
  server's acceptance);
- follow s (changing limit only): seconds from the drop until the first 1 s window
  [t, t + 1) in which the calls sent are at most 1.1 x the new limit ("never" if none
  before the rise; 0 for a client that slows down at once);
- nodes: complete / failed in the checkpoint (``SELECT status, count(*) FROM nodes``;
  11,111 when done: the 11,110 of the tree and the level-1 list's own node);
- exit: resumer's exit status per run ("killed" for a run that did not finish);
- notes: with the changing limit, when it dropped and rose back and the rate of 200s in
  the low phase (its first second left out); for nginx also a probe made before the
  crawl (sending at 1.5 x the rate for 2 s, reloading with a third, again), which shows
  a reload puts the new rate in force; the crawl's 200s alone cannot when the client
  stays below the new limit anyway. For the restart: when the backend was killed, how
  long it was down, the calls sent meanwhile, and the seconds lost (wall - the wall
  without the restart). For the quota: when it first refused, the calls sent while
  closed, the seconds lost, and the ``paused_until`` that ``resumer status --json``
  reported while closed (null if it did not).

Figures, not assertions: this is not a test.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from nginx_tree import (
    LogTail,
    Nginx,
    check_refusal,
    check_reload,
    free_port,
    nginx_binary,
    parse_line,
    read_access_log,
)
from nginx_tree import write_tree as write_nginx_tree
from proxies import HAProxy, NginxProxy, haproxy_binary

REPO = Path(__file__).resolve().parent.parent
resumer_source = REPO  # the source tree resumer runs from (--resumer)
ROOTS, FANOUT, DEPTH, BURST = 10, 10, 4, 10
KILL_AFTER = 10  # x the allowed-rate time
DROP_AT = 0.3  # of the allowed-rate time, after launch
RISE_AT = 0.7  # of the queries answered
FOLLOW_SLACK = 1.1  # x the new limit
LATENCY = 0.02  # seconds, the fake API's answers in the concurrency and restart rows
AT_ONCE = 8  # calls the fake API serves at once in the concurrency rows
RESTART_AT = 0.3  # of the queries answered: the backend is killed
DOWN_FOR = 4.0  # seconds from the kill to the backend's new start
QUOTA = 600  # children calls, then the quota closes (once: 1,110 - 600 < 600)
CLOSED_FOR = 40.0  # seconds: past retry.max (30), within [rate] max_pause (900)
STATUS_AFTER = 1.0  # seconds after the quota's first refusal: `resumer status --json`
PROXY_REFUSED = (429, 502, 503, 504)  # behind nginx, the backend down answers 502

JOB = """\
[source]
url = "{source}"

[request]
url = "{request}"

[response]
items = "data.items"
"""
ADAPTIVE = """
[crawl]
adaptive = true
http_concurrency = 64
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    refusal: str = "429-retry-after"  # nginx: a key of nginx_tree.REFUSALS
    fake_flags: tuple[str, ...] = ()  # fake API: its rate-limit flags (--rate-limit added)
    changing: bool = False  # the limit drops to a third, then rises back
    adaptive: bool = False
    rate_limited: bool = True  # fake API: --rate-limit at --rate (else no limit on the rate)
    served_at_once: int = 0  # fake API: at most this many calls served at once (0 = no such)
    latency: float = 0.0  # fake API: seconds before each answer
    fault: str = ""  # "restart" (the backend behind nginx) or "quota"


def fake_options(scenario: Scenario, rate: float) -> tuple[str, ...]:
    """The fake API's flags for a row: its limit, its latency and the row's own flags."""
    limit: tuple[str, ...] = ()
    if scenario.served_at_once:
        limit = ("--limiter", "concurrency", "--rate-limit", str(scenario.served_at_once))
    elif scenario.rate_limited:
        limit = ("--rate-limit", f"{rate:g}", "--burst", str(BURST))
    return (*limit, "--latency", f"{scenario.latency:g}", *scenario.fake_flags)


NGINX_ROWS = [
    Scenario("nginx: 429 + Retry-After: 1", "429-retry-after"),
    Scenario("nginx: 429, no Retry-After", "429"),
    Scenario("nginx: 503 (default), no Retry-After", "503"),
    Scenario("nginx: 429 + Retry-After: 1, limit / 3 and back", "429-retry-after", changing=True),
    Scenario("nginx: 429 + Retry-After: 1, adaptive <= 64", "429-retry-after", adaptive=True),
    Scenario(
        "nginx in front of the fake API (20 ms), which is killed at 30% and started 4 s later",
        rate_limited=False,
        latency=LATENCY,
        fault="restart",
    ),
]
_RA = ("--throttle-status", "429", "--limit-retry-after", "1")
FAKE_ROWS = [
    Scenario("fake: 429 + Retry-After: 1", fake_flags=(*_RA, "--rate-headers", "none")),
    Scenario(
        "fake: 429, no Retry-After",
        fake_flags=("--throttle-status", "429", "--limit-retry-after", "0"),
    ),
    Scenario(
        "fake: 503, no Retry-After",
        fake_flags=("--throttle-status", "503", "--limit-retry-after", "0"),
    ),
    Scenario(
        "fake: 429 + Retry-After: 1, RateLimit headers",
        fake_flags=(*_RA, "--rate-headers", "ratelimit"),
    ),
    Scenario(
        "fake: 429 + Retry-After: 1, X-RateLimit headers",
        fake_flags=(*_RA, "--rate-headers", "x-ratelimit"),
    ),
    Scenario(
        "fake: 429 + Retry-After: 1, draft headers",
        fake_flags=(*_RA, "--rate-headers", "draft"),
    ),
    Scenario(
        "fake: 429 + Retry-After: 1, bucket headers (whole seconds)",
        fake_flags=(*_RA, "--rate-headers", "bucket"),
    ),
    Scenario(
        "fake: fixed window, 429 + Retry-After, X-RateLimit-Reset a Unix time",
        fake_flags=(*_RA, "--limiter", "window", "--rate-headers", "x-ratelimit"),
    ),
    Scenario(
        "fake: sliding window counting refused calls, 429 + Retry-After",
        fake_flags=(*_RA, "--limiter", "sliding", "--rate-headers", "none"),
    ),
    Scenario(
        "fake: 429 + Retry-After: 1, limit / 3 and back",
        fake_flags=(*_RA, "--rate-headers", "none"),
        changing=True,
    ),
    Scenario(
        "fake: at most 8 calls served at once, 503 beyond, 20 ms answers",
        served_at_once=AT_ONCE,
        latency=LATENCY,
    ),
    Scenario(
        "fake: at most 8 calls served at once, 503 beyond, 20 ms answers, adaptive <= 64",
        served_at_once=AT_ONCE,
        latency=LATENCY,
        adaptive=True,
    ),
    Scenario(
        "fake: a quota of 600 calls, then closed for 40 s (429 + Retry-After: the seconds left)",
        fake_flags=("--quota", str(QUOTA), "--closed-for", f"{CLOSED_FOR:g}"),
        rate_limited=False,
        fault="quota",
    ),
]
HAPROXY_ROWS = [
    Scenario(
        "haproxy: http_req_rate(1s) over the rate, 429 + Retry-After: 1",
        rate_limited=False,
    ),
]


# -- what the server saw --------------------------------------------------------------


@dataclass
class Traffic:
    """The calls to /children during one crawl (times in epoch seconds, sorted)."""

    sent: list[float]  # every call
    accepted: list[float]  # those answered 200
    throttled: int  # answered 429 or 503
    throttled_at: list[float] = field(default_factory=list)  # when known (nginx)


def count_between(times: list[float], start: float, end: float) -> int:
    """Calls in [start, end)."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def peak_per_second(times: list[float]) -> int:
    """The most calls in any 1 s window."""
    peak, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def follow_time(sent: list[float], drop: float, rise: float, limit: float) -> float | None:
    """Seconds after ``drop`` until the first 1 s window [t, t + 1) holding at most
    FOLLOW_SLACK x ``limit`` calls; inf if none does before ``rise``; None if the low phase
    is shorter than a window. (A client that probes above the limit now and then, as
    every adaptive one must, still followed it.)"""
    step = 0.01
    starts = [drop + i * step for i in range(int((rise - 1.0 - drop) / step) + 1)]
    if not starts:
        return None
    for t in starts:
        if count_between(sent, t, t + 1.0) <= FOLLOW_SLACK * limit:
            return t - drop
    return math.inf


def allowed_time(schedule: list[tuple[float, float]], queries: int) -> float:
    """When a client sending at exactly the allowed rate has made ``queries`` calls;
    ``schedule`` is (seconds after launch, rate from then on), the first at 0."""
    left = float(queries)
    for (start, rate), (end, _) in zip(schedule, [*schedule[1:], (math.inf, 0.0)], strict=True):
        if rate * (end - start) >= left:
            return start + left / rate
        left -= rate * (end - start)
    return math.inf


# -- the servers ------------------------------------------------------------------------


class Target(Protocol):
    """A server under a rate limit, as a crawl sees it."""

    source_url: str
    request_url: str

    def begin(self, launch: float) -> None: ...  # the crawl starts now (epoch seconds)

    def set_rate(self, rate: float) -> None: ...  # returns once the new rate is in force

    def answered(self) -> int: ...  # children calls answered 200 since begin

    def traffic(self) -> Traffic: ...  # after the crawl


class LogTarget:
    """A server whose access log gives the calls: nginx serving the tree, or a proxy in
    front of the fake API. ``unit``: seconds per unit of the log's times; ``refused``: the
    statuses counted as throttled."""

    def __init__(
        self,
        access_log: Path,
        source_url: str,
        request_url: str,
        *,
        unit: float = 1.0,
        refused: tuple[int, ...] = (429, 503),
    ) -> None:
        self.access_log = access_log
        self.source_url = source_url
        self.request_url = request_url
        self.unit = unit
        self.refused = refused
        self.launch = 0.0
        self.ok = 0
        self.tail = LogTail(access_log)

    def begin(self, launch: float) -> None:
        self.launch = launch
        self.tail = LogTail(self.access_log)

    def set_rate(self, rate: float) -> None:
        raise NotImplementedError(f"this server's limit does not change (asked for {rate:g}/s)")

    def answered(self) -> int:
        for line in self.tail.new_lines():
            call = parse_line(line, self.unit)
            if call and call.children and call.status == 200 and call.time >= self.launch:
                self.ok += 1
        return self.ok

    def traffic(self) -> Traffic:
        logged = read_access_log(self.access_log, self.launch, self.unit)
        calls = [c for c in logged if c.children]
        refused = [c.time for c in calls if c.status in self.refused]
        return Traffic(
            sent=sorted(c.time for c in calls),
            accepted=sorted(c.time for c in calls if c.status == 200),
            throttled=len(refused),
            throttled_at=sorted(refused),
        )


class NginxTarget(LogTarget):
    """nginx serving the tree, its limit changed by a reload."""

    def __init__(self, server: Nginx) -> None:
        url = server.url
        super().__init__(server.access_log, f"{url}/features.json", f"{url}/children/{{id}}.json")
        self.server = server

    def set_rate(self, rate: float) -> None:
        self.server.set_rate(rate)


class FakeUnavailable(Exception):
    """The fake API does not take the rate-limit options (yet)."""


def start_fake(
    folder: Path, port: int, flags: tuple[str, ...]
) -> tuple[subprocess.Popen[str], str]:
    """``resumer fake-api`` serving the tree with ``flags`` on ``port`` (0: a free one), in
    its own process; returns the process and its URL once it listens."""
    command = [sys.executable, "-m", "resumer", "fake-api", "--port", str(port), "--even"]
    command += ["--roots", str(ROOTS), "--fanout", ",".join([str(FANOUT)] * (DEPTH - 1))]
    errors = folder / "fake-api.err"
    with errors.open("a") as sink:
        process = subprocess.Popen(
            [*command, *flags], stdout=subprocess.PIPE, stderr=sink, text=True, env=child_env()
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving"):
        process.wait()
        lines = [x.strip(" │╭╰─╮╯") for x in errors.read_text().splitlines()]
        raise FakeUnavailable(" ".join(x for x in lines if x) or f"no output: {line!r}")
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, line.rsplit(" ", 1)[-1].strip()


class Backend:
    """The fake API behind a proxy, on a port of its own so that it can be killed and
    started again where the proxy expects it."""

    def __init__(self, folder: Path, flags: tuple[str, ...]) -> None:
        self.folder = folder
        self.flags = flags
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Backend:
        self.process, _ = start_fake(self.folder, self.port, self.flags)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no call in flight is answered."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class FakeTarget:
    """``resumer fake-api`` with a rate limit, in its own process. Its calls over time come
    from polling /_stats; the polls, the POST /_rate calls and the /features call are
    taken out of its counts."""

    def __init__(self, folder: Path, flags: tuple[str, ...]) -> None:
        self.process, self.url = start_fake(folder, 0, flags)
        self.source_url = f"{self.url}/features"
        self.request_url = f"{self.url}/children"
        self.posts = 0
        self.polls = 0
        self.base = (0, 0, 0)
        self.samples: list[tuple[float, int, int, int]] = []  # (time, sent, ok, throttled)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _stats(self) -> tuple[int, int, int]:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as answer:
            stats = json.load(answer)
        self.polls += 1
        statuses = stats["statuses"]
        throttled = statuses.get("429", 0) + statuses.get("503", 0)
        return stats["received"], statuses.get("200", 0), throttled

    def _poll(self) -> None:
        received, ok, throttled = self._stats()
        base_received, base_ok, base_throttled = self.base
        # Not the crawl's: the polls since the base one (this one included; the base
        # poll's own 200 counts instead of this one's), the POST /_rate calls, /features.
        mine = self.polls + self.posts + 1
        self.samples.append(
            (
                time.time(),
                max(0, received - base_received - mine),
                max(0, ok - base_ok - mine),
                throttled - base_throttled,
            )
        )

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._poll()

    def begin(self, launch: float) -> None:
        self.base = self._stats()
        self.polls = 0
        self.samples = [(launch, 0, 0, 0)]
        self._sampler.start()

    def set_rate(self, rate: float) -> None:
        request = urllib.request.Request(
            f"{self.url}/_rate",
            data=json.dumps({"rate": rate}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            self.posts += 1

    def answered(self) -> int:
        return self.samples[-1][2]

    def refused(self) -> int:
        """Children calls answered 429 or 503 since begin, as of the last poll."""
        return self.samples[-1][3]

    def traffic(self) -> Traffic:
        self._stop.set()
        self._sampler.join()
        self._poll()
        times = [s[0] for s in self.samples]
        return Traffic(
            sent=spread(times, [s[1] for s in self.samples]),
            accepted=spread(times, [s[2] for s in self.samples]),
            throttled=self.samples[-1][3],
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def spread(times: list[float], counts: list[int]) -> list[float]:
    """Call times from cumulative counts at ``times``: the calls between two samples evenly
    spread over the interval."""
    calls: list[float] = []
    for (t0, n0), (t1, n1) in itertools.pairwise(zip(times, counts, strict=True)):
        new = n1 - n0
        calls.extend(t0 + (i + 1) * (t1 - t0) / new for i in range(max(0, new)))
    return calls


# -- one crawl --------------------------------------------------------------------------


@dataclass
class Plan:
    """The limit over time: fixed, or dropping to a third and rising back."""

    rate: float
    queries: int
    changing: bool
    # The time the row is measured against when it is not the allowed rate's (seconds).
    reference: float | None = None
    schedule: list[tuple[float, float]] = field(default_factory=list)  # (s after launch, rate)

    def __post_init__(self) -> None:
        self.schedule = [(0.0, self.rate)]

    @property
    def allowed(self) -> float:
        if self.reference is not None:
            return self.reference
        return allowed_time(self.schedule, self.queries)

    @property
    def low(self) -> float:
        return float(max(1, round(self.rate / 3)))

    def step(self, target: Target, launch: float) -> None:
        """Change the limit when it is time to."""
        if not self.changing or len(self.schedule) == 3:
            return
        elapsed = time.time() - launch
        if len(self.schedule) == 1 and elapsed >= DROP_AT * self.queries / self.rate:
            target.set_rate(self.low)
            self.schedule.append((time.time() - launch, self.low))
        elif len(self.schedule) == 2 and target.answered() >= RISE_AT * self.queries:
            target.set_rate(self.rate)
            self.schedule.append((time.time() - launch, self.rate))


@dataclass
class Result:
    wall: float
    finished: bool
    exit_status: int | None
    plan: Plan
    launch: float
    traffic: Traffic
    nodes: dict[str, int]
    checked: str = ""  # what was checked before the crawl or seen during it, for the notes

    @property
    def allowed(self) -> float:
        return self.plan.allowed

    @property
    def share(self) -> float:
        return self.traffic.throttled / len(self.traffic.sent) if self.traffic.sent else 0.0

    def phase(self, index: int) -> float | None:
        """Epoch time of the ``index``-th switch of the limit (1: the drop, 2: the rise)."""
        schedule = self.plan.schedule
        return self.launch + schedule[index][0] if len(schedule) > index else None

    def low_phase(self) -> tuple[float, float] | None:
        drop = self.phase(1)
        if drop is None:
            return None
        rise = self.phase(2)
        end = rise if rise is not None else max(self.traffic.sent, default=drop)
        return drop, end

    @property
    def span(self) -> float:
        sent = self.traffic.sent
        return sent[-1] - sent[0] if sent else 0.0

    @property
    def start(self) -> float:
        """From launch to the first call to /children (start-up and the level-1 list)."""
        sent = self.traffic.sent
        return sent[0] - self.launch if sent else self.wall

    @property
    def tail(self) -> float:
        """From the last call to /children to resumer's exit."""
        sent = self.traffic.sent
        return self.launch + self.wall - sent[-1] if sent else 0.0

    @property
    def follow(self) -> float | None:
        low = self.low_phase()
        if low is None:
            return None
        return follow_time(self.traffic.sent, *low, self.plan.low)

    def note(self) -> str:
        low = self.low_phase()
        notes = [] if self.finished else [f"killed at {self.wall:.0f} s"]
        notes += [self.checked] if self.checked else []
        if low is not None:
            drop, end = low
            rise = self.phase(2)
            back = f"back at {rise - self.launch:.1f} s" if rise else "never back"
            # The first second after the drop still holds the burst the zone allowed.
            accepted = count_between(self.traffic.accepted, drop + 1.0, end)
            rate = accepted / (end - drop - 1.0) if end - drop > 1.0 else 0.0
            notes.append(
                f"limit {self.plan.low:g}/s from {drop - self.launch:.1f} s, {back};"
                f" 200s then {rate:.1f}/s"
            )
        return "; ".join(notes)


def child_env() -> dict[str, str]:
    """resumer's processes run ``resumer_source``, with bytecode cached outside it."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "resumer-pacing-pycache")
    paths = [str(resumer_source), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def warm_up(folder: Path) -> None:
    """One trivial ``resumer start`` (a single root that is a leaf), so that the timed runs
    find their bytecode compiled, as an installed package has it."""
    (folder / "warm.json").write_text('[{"id": "W1"}]')
    job = folder / "warm.toml"
    job.write_text(
        '[source]\nfile = "warm.json"\n[request]\nurl = "http://127.0.0.1:9/{id}"\n'
        "[crawl]\nmax_depth = 1\n"
    )
    command = [sys.executable, "-m", "resumer", "start", str(job), "--db", str(folder / "w.db")]
    subprocess.run(command, cwd=folder, env=child_env(), capture_output=True, check=False)


def checkpoint_counts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM nodes GROUP BY status").fetchall()
    return {status: count for status, count in rows}


def supervise(
    process: subprocess.Popen[bytes],
    plan: Plan,
    target: Target,
    launch: float,
    during: Callable[[], None] | None = None,
) -> bool:
    """Wait for resumer, changing the limit as planned and calling ``during`` (a fault's
    schedule) every 50 ms; kill it past KILL_AFTER x the allowed-rate time (or the row's
    reference). True if it finished by itself."""
    while True:
        try:
            process.wait(timeout=0.05)
            return True
        except subprocess.TimeoutExpired:
            pass
        if time.time() - launch > KILL_AFTER * plan.allowed:
            process.kill()
            process.wait()
            return False
        plan.step(target, launch)
        if during is not None:
            during()


def crawl(
    target: Target,
    scenario: Scenario,
    folder: Path,
    rate: float,
    queries: int,
    *,
    during: Callable[[], None] | None = None,
    reference: float | None = None,
) -> Result:
    """``resumer start`` on a fresh checkpoint against ``target``."""
    job = folder / "job.toml"
    text = JOB.format(source=target.source_url, request=target.request_url)
    job.write_text(text + (ADAPTIVE if scenario.adaptive else ""))
    db = folder / "job.db"
    plan = Plan(rate, queries, scenario.changing, reference)
    command = [sys.executable, "-m", "resumer", "start", str(job), "--db", str(db)]
    with (folder / "resumer.log").open("wb") as log:
        launch = time.time()
        target.begin(launch)
        process = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=child_env()
        )
        try:
            finished = supervise(process, plan, target, launch, during)
            wall = time.time() - launch
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    exit_status = process.returncode if finished else None
    return Result(
        wall, finished, exit_status, plan, launch, target.traffic(), checkpoint_counts(db)
    )


def nginx_run(scenario: Scenario, www: Path, folder: Path, rate: float, queries: int) -> Result:
    with Nginx(folder, www, rate, scenario.refusal) as server:
        problem = check_refusal(server.url, scenario.refusal, calls=40 + int(rate) // 10)
        if problem:
            raise SystemExit(f"nginx does not refuse as {scenario.refusal!r} should: {problem}")
        checked = ""
        if scenario.changing:
            before, after = check_reload(server, Plan(rate, queries, True).low)
            checked = f"reload probed: {before:.0f} -> {after:.0f}/s accepted"
        time.sleep(0.5)  # the zone forgets the checks' bursts in 0.1 s
        result = crawl(NginxTarget(server), scenario, folder, rate, queries)
        result.checked = checked
        return result


def fake_run(scenario: Scenario, folder: Path, rate: float, queries: int) -> Result:
    if scenario.fault == "quota":
        return quota_run(scenario, folder, rate, queries)
    # Calls served at once: the ideal is every slot busy, each call taking the latency.
    ideal = (
        queries * scenario.latency / scenario.served_at_once if scenario.served_at_once else None
    )
    target = FakeTarget(folder, fake_options(scenario, rate))
    try:
        return crawl(target, scenario, folder, rate, queries, reference=ideal)
    finally:
        target.stop()


def without_fault(scenario: Scenario, folder: Path) -> tuple[Scenario, Path]:
    """The same row without its fault, run in a folder of its own."""
    plain = replace(scenario, fault="", fake_flags=())
    where = folder / "without-fault"
    where.mkdir()
    where.chmod(0o755)  # nginx's workers may run as another user
    return plain, where


def status_json(db: Path) -> dict[str, object]:
    """``resumer status --json`` on the checkpoint, as a script would run it."""
    command = [sys.executable, "-m", "resumer", "status", "--db", str(db), "--json"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=child_env(), timeout=60, check=False
    )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-200:]}"}
    return answer if isinstance(answer, dict) else {"error": f"not an object: {answer!r}"}


class QuotaWatch:
    """Once the quota has refused a call: ``resumer status --json`` on the checkpoint,
    STATUS_AFTER s later (the crawl records its health every 0.5 s), keeping its answer."""

    def __init__(self, target: FakeTarget, db: Path) -> None:
        self.target = target
        self.db = db
        self.refused_at: float | None = None  # epoch seconds
        self.status: dict[str, object] | None = None

    def __call__(self) -> None:
        if self.status is not None:
            return
        if self.refused_at is None:
            if self.target.refused():
                self.refused_at = time.time()
        elif time.time() >= self.refused_at + STATUS_AFTER:
            self.status = status_json(self.db)  # the quota is closed for long: no hurry

    def note(self, result: Result, baseline: float) -> str:
        if self.refused_at is None:
            return "the quota never refused a call"
        status = self.status or {"error": "not run (the crawl ended first)"}
        paused = status["error"] if "error" in status else status.get("paused_until")
        shown = "null" if paused is None else paused
        return (
            f"first refusal at {self.refused_at - result.launch:.1f} s;"
            f" {result.traffic.throttled} calls while closed;"
            f" lost {result.wall - baseline:.1f} s (without the quota: {baseline:.1f} s);"
            f" status --json while closed: paused_until {shown}"
        )


def quota_run(scenario: Scenario, folder: Path, rate: float, queries: int) -> Result:
    """The crawl against the quota, after the same crawl without it: the reference is that
    crawl's wall plus the time the quota stays closed."""
    baseline = fake_run(*without_fault(scenario, folder), rate, queries).wall
    target = FakeTarget(folder, fake_options(scenario, rate))
    try:
        watch = QuotaWatch(target, folder / "job.db")
        reference = baseline + CLOSED_FOR
        result = crawl(target, scenario, folder, rate, queries, during=watch, reference=reference)
    finally:
        target.stop()
    result.checked = watch.note(result, baseline)
    return result


class Restart:
    """Kills the backend once RESTART_AT of the queries are answered and starts it again
    DOWN_FOR seconds later (the times, epoch seconds, kept for the notes)."""

    def __init__(self, backend: Backend, target: Target, queries: int) -> None:
        self.backend = backend
        self.target = target
        self.queries = queries
        self.killed: float | None = None
        self.back: float | None = None  # listening again

    def __call__(self) -> None:
        if self.killed is None:
            if self.target.answered() >= RESTART_AT * self.queries:
                self.killed = time.time()  # before: nginx logs the 502s as the kill lands
                self.backend.kill()
        elif self.back is None and time.time() >= self.killed + DOWN_FOR:
            self.backend.start()  # the crawl cannot end while it is down: blocking is fine
            self.back = time.time()

    @property
    def down(self) -> float:
        if self.killed is None:
            return 0.0
        return (self.back or time.time()) - self.killed

    def note(self, result: Result, baseline: float) -> str:
        if self.killed is None or self.back is None:
            return "the backend was not killed and started again"
        during = count_between(result.traffic.sent, self.killed, self.back)
        return (
            f"killed at {self.killed - result.launch:.1f} s, listening again"
            f" {self.down:.1f} s later; {during} calls while down;"
            f" lost {result.wall - baseline:.1f} s (without the restart: {baseline:.1f} s)"
        )


def proxied_run(
    scenario: Scenario, folder: Path, rate: float, queries: int, baseline: float | None
) -> Result:
    """A crawl through nginx in front of the fake API; with a ``baseline`` (the wall of the
    same crawl without the restart), the backend is killed and started again."""
    backend = Backend(folder, fake_options(scenario, rate)).start()
    try:
        with NginxProxy(folder, backend.port) as proxy:
            target = LogTarget(
                proxy.access_log,
                f"{proxy.url}/features",
                f"{proxy.url}/children",
                refused=PROXY_REFUSED,
            )
            if baseline is None:
                return crawl(target, scenario, folder, rate, queries)
            restart = Restart(backend, target, queries)
            reference = baseline + DOWN_FOR
            result = crawl(
                target, scenario, folder, rate, queries, during=restart, reference=reference
            )
    finally:
        backend.stop()
    result.plan.reference = baseline + restart.down
    result.checked = restart.note(result, baseline)
    return result


def restart_run(scenario: Scenario, folder: Path, rate: float, queries: int) -> Result:
    """The restart row: the reference is the wall of the same crawl without the restart
    plus the time the backend was down."""
    plain, where = without_fault(scenario, folder)
    baseline = proxied_run(plain, where, rate, queries, None).wall
    return proxied_run(scenario, folder, rate, queries, baseline)


def haproxy_run(scenario: Scenario, folder: Path, rate: float, queries: int) -> Result:
    backend = Backend(folder, fake_options(scenario, rate)).start()
    try:
        with HAProxy(folder, backend.port, rate) as proxy:
            problem = check_refusal(proxy.url, "429-retry-after", calls=int(rate) + 20)
            if problem:
                raise SystemExit(f"haproxy does not refuse with 429 + Retry-After: {problem}")
            time.sleep(2.0)  # the rate forgets the check's calls (the last second weighs in)
            target = LogTarget(
                proxy.access_log,
                f"{proxy.url}/features",
                f"{proxy.url}/children",
                unit=proxy.log_unit,
            )
            return crawl(target, scenario, folder, rate, queries)
    finally:
        backend.stop()


# -- the table --------------------------------------------------------------------------

HEADER = (
    "| scenario | wall s | allowed-rate s | ratio (goal >= 0.9) | calls | throttled"
    " | share (goal <= 5%) | start s | span s | tail s | peak/s | follow s"
    " | nodes complete / failed | exit | notes |"
)


def median(values: list[float]) -> float:
    return statistics.median(values)


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return "never" if math.isinf(value) else f"{value:.1f}"


def row(name: str, results: list[Result]) -> str:
    middle = sorted(results, key=lambda r: r.wall)[len(results) // 2]
    wall = median([r.wall for r in results])
    unfinished = sum(not r.finished for r in results)
    wall_cell = f"{wall:.1f}"
    if len(results) > 1:
        walls = [r.wall for r in results]
        wall_cell += f" ({min(walls):.1f}-{max(walls):.1f})"
    if unfinished == len(results):
        wall_cell = "did not finish"
    elif unfinished:
        wall_cell += f" ({unfinished} of {len(results)} did not finish)"
    ratio = median([r.allowed / r.wall for r in results])
    follows = [r.follow for r in results if r.follow is not None]
    nodes = middle.nodes
    exits = " ".join("killed" if r.exit_status is None else str(r.exit_status) for r in results)
    cells = [
        name,
        wall_cell,
        f"{median([r.allowed for r in results]):.1f}",
        ("<= " if unfinished == len(results) else "") + f"{ratio:.2f}",
        f"{median([len(r.traffic.sent) for r in results]):,.0f}",
        f"{median([r.traffic.throttled for r in results]):,.0f}",
        f"{median([r.share for r in results]):.1%}",
        f"{median([r.start for r in results]):.2f}",
        f"{median([r.span for r in results]):.1f}",
        f"{median([r.tail for r in results]):.2f}",
        f"{median([peak_per_second(r.traffic.sent) for r in results]):.0f}",
        seconds(median(follows)) if follows else "",
        f"{nodes.get('complete', 0):,} / {nodes.get('failed', 0):,}",
        exits,
        middle.note(),
    ]
    return "| " + " | ".join(cells) + " |"


def timeline(name: str, result: Result) -> str:
    """Calls sent (and refused, when known) in each second after launch."""
    seconds_run = math.ceil(result.wall)
    parts = []
    for second in range(seconds_run):
        start = result.launch + second
        sent = count_between(result.traffic.sent, start, start + 1)
        refused = count_between(result.traffic.throttled_at, start, start + 1)
        parts.append(f"{sent}" + (f"/{refused}" if refused else ""))
    return f"{name}: calls/refused per second: {' '.join(parts)}"


# -- main -------------------------------------------------------------------------------


row_filter: str | None = None  # --row


def wanted(scenario: Scenario, scenarios: list[Scenario]) -> bool:
    """``--row``: the row of that name if there is one, else every row whose name holds it."""
    if not row_filter:
        return True
    if any(s.name == row_filter for s in scenarios):
        return scenario.name == row_filter
    return row_filter in scenario.name


def run_rows(
    scenarios: list[Scenario],
    repeat: int,
    run: Callable[[Scenario, Path], Result],
    folder: Path,
) -> list[tuple[Scenario, list[Result]]]:
    done = []
    for scenario in scenarios:
        if not wanted(scenario, scenarios):
            continue
        results = []
        for attempt in range(repeat):
            print(f"{scenario.name}: run {attempt + 1} of {repeat}", file=sys.stderr, flush=True)
            where = folder / f"run-{time.monotonic_ns()}"
            where.mkdir()
            where.chmod(0o755)  # nginx's workers may run as another user
            results.append(run(scenario, where))
        done.append((scenario, results))
    return done


def nginx_rows(args: argparse.Namespace, folder: Path) -> list[tuple[Scenario, list[Result]]]:
    if nginx_binary() is None:
        print("nginx is not installed (no nginx on PATH nor /usr/sbin/nginx): no nginx rows")
        return []
    www = folder / "www"
    queries = write_nginx_tree(www, ROOTS, FANOUT, DEPTH)
    for path in (folder, www, www / "children"):
        path.chmod(0o755)

    def run(scenario: Scenario, where: Path) -> Result:
        if scenario.fault == "restart":
            return restart_run(scenario, where, args.rate, queries)
        return nginx_run(scenario, www, where, args.rate, queries)

    return run_rows(NGINX_ROWS, args.repeat, run, folder)


def fake_rows(args: argparse.Namespace, folder: Path) -> list[tuple[Scenario, list[Result]]]:
    queries = ROOTS + ROOTS * FANOUT + ROOTS * FANOUT**2

    def run(scenario: Scenario, where: Path) -> Result:
        return fake_run(scenario, where, args.rate, queries)

    try:
        return run_rows(FAKE_ROWS, args.repeat, run, folder)
    except FakeUnavailable as error:
        print(f"the fake API does not take the rate-limit options yet: no fake rows ({error})")
        return []


def haproxy_rows(args: argparse.Namespace, folder: Path) -> list[tuple[Scenario, list[Result]]]:
    if haproxy_binary() is None:
        print(
            "haproxy is not installed (no haproxy on PATH nor /usr/sbin/haproxy): no haproxy rows"
        )
        return []
    queries = ROOTS + ROOTS * FANOUT + ROOTS * FANOUT**2

    def run(scenario: Scenario, where: Path) -> Result:
        return haproxy_run(scenario, where, args.rate, queries)

    return run_rows(HAPROXY_ROWS, args.repeat, run, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("nginx", "fake", "haproxy"), help="only these rows")
    parser.add_argument(
        "--row", metavar="TEXT", help="only the row named TEXT, or those whose name holds it"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (medians)")
    parser.add_argument("--rate", type=float, default=100.0, help="the limit, calls a second")
    parser.add_argument("--timeline", action="store_true", help="calls per second of each run")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep its logs there")
    parser.add_argument(
        "--resumer", metavar="DIR", type=Path, help="run resumer from this source tree"
    )
    args = parser.parse_args()
    global resumer_source, row_filter
    row_filter = args.row
    resumer_source = (args.resumer or REPO).resolve()
    rows: list[tuple[Scenario, list[Result]]] = []
    with tempfile.TemporaryDirectory(prefix="resumer-pacing-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warm_up(folder)
        if args.only in (None, "nginx"):
            rows += nginx_rows(args, folder)
        if args.only in (None, "fake"):
            rows += fake_rows(args, folder)
        if args.only in (None, "haproxy"):
            rows += haproxy_rows(args, folder)
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for scenario, results in rows:
        print(row(scenario.name, results))
    if args.timeline:
        for scenario, results in rows:
            for result in results:
                print(timeline(scenario.name, result))


if __name__ == "__main__":
    main()
