"""Benchmark: how well resumer keeps to a server's rate limit, against a real nginx
``limit_req`` and against resumer's own fake API.

    python bench/pacing.py                  # every row, one run each
    python bench/pacing.py --repeat 3       # medians of 3 runs per row
    python bench/pacing.py --only nginx     # only the nginx rows (or: fake)
    python bench/pacing.py --row "429 + Retry-After: 1" --only nginx   # rows by name
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
(``$msec $status $request_uri``) gives the calls.

The fake API (``resumer fake-api``) gets the same rows with its own rate limiter
(``--rate-limit``, ``--burst``, ``--throttle-status``, ``--limit-retry-after``; the drop
and rise through ``POST /_rate``), minus the adaptive one, plus (a) with each style of
rate-limit headers (``--rate-headers ratelimit|x-ratelimit|draft|bucket``), and (a) with the
other shapes of limiter (``--limiter window``: a fixed window of 1 s announcing its reset as
a Unix time; ``--limiter sliding``: a sliding window of 1 s that counts refused calls too);
its calls over time come
from polling ``GET /_stats`` every 50 ms, so its figures are good to a call or two and
its send rate to the poll's resolution. If the fake API lacks these options, a line says
so and its rows are skipped.

One run of every row takes about 15 minutes with a resumer that does not pace itself
(most rows then wait out a Retry-After every second), ``--repeat 3`` about 45; nginx's
rows are half of it.

Figures per row (medians over the repeats):

- wall s: ``resumer start`` from launch to exit, start-up included (about 0.8 s to the
  first call), with the range over the repeats; a run still going after 10 x the
  allowed-rate time is killed and shows "did not finish";
- allowed-rate s: the time a client sending exactly at the allowed rate needs for the
  1,110 queries: 1,110 / rate, or, when the limit changes, the time T at which the calls
  allowed up to T (the schedule integrated, with the actual switch times) reach 1,110;
- ratio: allowed-rate s / wall s (goal >= 0.9);
- calls: calls to /children, refused ones included; throttled: those answered 429/503;
  share: throttled / calls (goal <= 5%; <= 8% with the changing limit);
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
  stays below the new limit anyway.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nginx_tree import (
    LogTail,
    Nginx,
    check_refusal,
    check_reload,
    nginx_binary,
    parse_line,
    read_access_log,
)
from nginx_tree import write_tree as write_nginx_tree

REPO = Path(__file__).resolve().parent.parent
resumer_source = REPO  # the source tree resumer runs from (--resumer)
ROOTS, FANOUT, DEPTH, BURST = 10, 10, 4, 10
KILL_AFTER = 10  # x the allowed-rate time
DROP_AT = 0.3  # of the allowed-rate time, after launch
RISE_AT = 0.7  # of the queries answered
FOLLOW_SLACK = 1.1  # x the new limit

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


NGINX_ROWS = [
    Scenario("nginx: 429 + Retry-After: 1", "429-retry-after"),
    Scenario("nginx: 429, no Retry-After", "429"),
    Scenario("nginx: 503 (default), no Retry-After", "503"),
    Scenario("nginx: 429 + Retry-After: 1, limit / 3 and back", "429-retry-after", changing=True),
    Scenario("nginx: 429 + Retry-After: 1, adaptive <= 64", "429-retry-after", adaptive=True),
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


class NginxTarget:
    def __init__(self, server: Nginx) -> None:
        self.server = server
        self.source_url = f"{server.url}/features.json"
        self.request_url = f"{server.url}/children/{{id}}.json"
        self.launch = 0.0
        self.ok = 0
        self.tail = LogTail(server.access_log)

    def begin(self, launch: float) -> None:
        self.launch = launch
        self.tail = LogTail(self.server.access_log)

    def set_rate(self, rate: float) -> None:
        self.server.set_rate(rate)

    def answered(self) -> int:
        for line in self.tail.new_lines():
            call = parse_line(line)
            if call and call.children and call.status == 200 and call.time >= self.launch:
                self.ok += 1
        return self.ok

    def traffic(self) -> Traffic:
        calls = [c for c in read_access_log(self.server.access_log, self.launch) if c.children]
        refused = [c.time for c in calls if c.status in (429, 503)]
        return Traffic(
            sent=sorted(c.time for c in calls),
            accepted=sorted(c.time for c in calls if c.status == 200),
            throttled=len(refused),
            throttled_at=sorted(refused),
        )


class FakeUnavailable(Exception):
    """The fake API does not take the rate-limit options (yet)."""


class FakeTarget:
    """``resumer fake-api`` with a rate limit, in its own process. Its calls over time come
    from polling /_stats; the polls, the POST /_rate calls and the /features call are
    taken out of its counts."""

    def __init__(self, folder: Path, rate: float, flags: tuple[str, ...]) -> None:
        command = [sys.executable, "-m", "resumer", "fake-api", "--port", "0", "--even"]
        command += ["--roots", str(ROOTS), "--fanout", ",".join([str(FANOUT)] * (DEPTH - 1))]
        command += ["--rate-limit", f"{rate:g}", "--burst", str(BURST), *flags]
        errors = folder / "fake-api.err"
        with errors.open("w") as sink:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=sink, text=True, env=child_env()
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("serving"):
            self.process.wait()
            lines = [x.strip(" │╭╰─╮╯") for x in errors.read_text().splitlines()]
            raise FakeUnavailable(" ".join(x for x in lines if x) or f"no output: {line!r}")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.url = line.rsplit(" ", 1)[-1].strip()
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
    schedule: list[tuple[float, float]] = field(default_factory=list)  # (s after launch, rate)

    def __post_init__(self) -> None:
        self.schedule = [(0.0, self.rate)]

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
    checked: str = ""  # what was checked before the crawl, for the notes

    @property
    def allowed(self) -> float:
        return allowed_time(self.plan.schedule, self.plan.queries)

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


def supervise(process: subprocess.Popen[bytes], plan: Plan, target: Target, launch: float) -> bool:
    """Wait for resumer, changing the limit as planned; kill it past KILL_AFTER x the
    allowed-rate time. True if it finished by itself."""
    while True:
        try:
            process.wait(timeout=0.05)
            return True
        except subprocess.TimeoutExpired:
            pass
        if time.time() - launch > KILL_AFTER * allowed_time(plan.schedule, plan.queries):
            process.kill()
            process.wait()
            return False
        plan.step(target, launch)


def crawl(target: Target, scenario: Scenario, folder: Path, rate: float, queries: int) -> Result:
    """``resumer start`` on a fresh checkpoint against ``target``."""
    job = folder / "job.toml"
    text = JOB.format(source=target.source_url, request=target.request_url)
    job.write_text(text + (ADAPTIVE if scenario.adaptive else ""))
    db = folder / "job.db"
    plan = Plan(rate, queries, scenario.changing)
    command = [sys.executable, "-m", "resumer", "start", str(job), "--db", str(db)]
    with (folder / "resumer.log").open("wb") as log:
        launch = time.time()
        target.begin(launch)
        process = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=child_env()
        )
        try:
            finished = supervise(process, plan, target, launch)
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
    target = FakeTarget(folder, rate, scenario.fake_flags)
    try:
        return crawl(target, scenario, folder, rate, queries)
    finally:
        target.stop()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("nginx", "fake"), help="only these rows")
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
