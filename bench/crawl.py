"""Benchmark: resumer against the fake API, next to the ideal and a plain httpx pool.

    python bench/crawl.py --repeat 3   # every scenario, medians of 3 (about 6 minutes)
    python bench/crawl.py --quick      # a small tree, to try things
    python bench/crawl.py --only scale # one group: api, client, scale (or scale10m, apart)

The fake API runs in its own process pinned to one core and the client on the
other (when there are two). Scenarios, on a tree of 20 x 20 x 50 x 10 (20,421
queries) unless said otherwise:

- API-bound: 50 ms per answer, 64 in flight, next to the ideal time;
- client-bound: 0 ms, 16 and 64 in flight, next to a plain httpx thread pool
  with as many threads crawling the same tree without a checkpoint;

the API-bound and client-bound rows run once per HTTP engine (``--engines``,
default curl and httpx), the engines' runs taking turns, so that both see
the same machine;
- scale: a million nodes (10 x 10 x 100 x 100, 0 ms): the crawl, ``status``,
  ``export``, and ``resume`` after a kill -9 half-way;
- scale10m (only with ``--only scale10m``): the same for ten million nodes
  (10 x 10 x 100 x 1,000).

It prints one Markdown table: the engine, wall time, queries/s, the client process's CPU
(user + sys) per query in microseconds, its peak RSS, and the figure that
matters for the row. The CPU figure is the steady one on a shared machine,
where wall times move with whatever else runs. Figures, not assertions:
this is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAKE_CORE, CLIENT_CORE = 1, 0

JOB = """\
[source]
url = "{url}/features"
[request]
url = "{url}/children"
{request_extra}
[response]
items = "data.items"
[crawl]
max_depth = 4
http_concurrency = {concurrency}
{crawl_extra}
[levels.1]
workers = {w1}
[levels.2]
workers = {w2}
[levels.3]
workers = {w3}
"""


@dataclass
class Run:
    wall: float
    rss_mb: float
    queries: int
    cpu: float = 0.0  # seconds of the client process's CPU, user + sys


def pinned(core: int) -> dict[str, object]:
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, {core})}


def start_fake_api(
    roots: int, fanout: str, latency: float, *faults: str
) -> tuple[subprocess.Popen[str], str]:
    """The fake API in its own process on its own core; ``faults`` are extra flags."""
    command = [sys.executable, "-m", "resumer", "fake-api", "--port", "0", "--even"]
    command += ["--roots", str(roots), "--fanout", fanout, "--latency", str(latency), *faults]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **pinned(FAKE_CORE))  # type: ignore[call-overload]
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.rsplit(" ", 1)[-1].strip()


# Spawns one command and reports its figures. Linux counts in a process's peak RSS the
# memory of whatever spawned it (the spawner's peak is carried over the exec), so the
# measured command is spawned by this small process, not by the bench, grown by then.
_MEASURE = """\
import os, sys, time
core, report, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
os.set_inheritable(report, False)  # the command's end closes nothing of ours
if core >= 0:
    os.sched_setaffinity(0, {core})
began = time.perf_counter()
_, status, usage = os.wait4(os.posix_spawnp(command[0], command, os.environ), 0)
wall = time.perf_counter() - began
cpu = usage.ru_utime + usage.ru_stime
os.write(report, f"{os.waitstatus_to_exitcode(status)} {wall} {usage.ru_maxrss} {cpu}".encode())
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float, str, float]:
    """Run ``command`` on the client's core: (wall seconds, peak RSS MB, its output,
    CPU seconds, user + sys)."""
    core = CLIENT_CORE if pinned(CLIENT_CORE) else -1
    read, write = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-c", _MEASURE, str(core), str(write), *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        pass_fds=(write,),
    )
    os.close(write)
    assert process.stdout is not None
    output = process.stdout.read()
    with os.fdopen(read) as report:
        figures = report.read().split()
    if process.wait() != 0 or len(figures) != 4:
        raise SystemExit(f"could not run {command[:4]} (status {process.returncode})")
    status, wall, rss_kb, cpu = figures
    if status != "0":
        raise SystemExit(f"{command[:4]} failed with status {status}")
    return float(wall), int(rss_kb) / 1024, output, float(cpu)


def run_resumer(
    url: str,
    concurrency: int,
    workers: tuple[int, int, int],
    folder: Path,
    extra: str = "",
    crawl_extra: str = "",
    request_extra: str = "",
    engine: str = "curl",
) -> Run:
    """``resumer start`` on a fresh checkpoint; ``extra`` sections go at the job file's end,
    ``crawl_extra`` and ``request_extra`` lines into its [crawl] and [request] sections."""
    job = folder / f"job-{time.monotonic_ns()}.toml"
    w1, w2, w3 = workers
    text = JOB.format(
        url=url,
        concurrency=concurrency,
        w1=w1,
        w2=w2,
        w3=w3,
        crawl_extra=crawl_extra,
        request_extra=f'engine = "{engine}"\n{request_extra}',
    )
    job.write_text(text + extra)
    db = folder / f"{job.stem}.db"
    command = [sys.executable, "-m", "resumer", "start", str(job), "--db", str(db)]
    command += ["--log-level", "WARNING"]
    wall, rss, _, cpu = timed(command, folder)
    import sqlite3

    with sqlite3.connect(db) as conn:
        queried = conn.execute(
            "SELECT count(*) FROM nodes WHERE level < 4 AND status = 'complete'"
        ).fetchone()[0]
    return Run(wall, rss, queried, cpu)


def run_plain(url: str, threads: int, folder: Path) -> Run:
    command = [sys.executable, str(HERE / "plain_pool.py"), url, "--threads", str(threads)]
    wall, rss, output, cpu = timed(command, folder)
    return Run(wall, rss, int(output.strip()), cpu)


Row = tuple[str, str, Run, str]  # scenario, engine, figures, note


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time, with the median CPU of all (each its own median)."""
    middle = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    return replace(middle, cpu=sorted(r.cpu for r in runs)[len(runs) // 2])


def by_engine(engines: list[str], repeat: int, one: Callable[[str], Run]) -> dict[str, Run]:
    """The median run of each engine; the engines take turns, run after run."""
    runs: dict[str, list[Run]] = {engine: [] for engine in engines}
    for _ in range(repeat):
        for engine in engines:
            runs[engine].append(one(engine))
    return {engine: median_run(each) for engine, each in runs.items()}


def api_bound(
    roots: int, fanout: str, queries: int, repeat: int, folder: Path, engines: list[str]
) -> list[Row]:
    """50 ms per answer, 64 in flight: how close to the ideal time."""
    latency, concurrency = 0.05, 64
    api, url = start_fake_api(roots, fanout, latency)
    try:
        runs = by_engine(
            engines, repeat, lambda e: run_resumer(url, concurrency, (8, 16, 64), folder, engine=e)
        )
    finally:
        api.terminate()
        api.wait()
    ideal = queries * latency / concurrency + 3 * latency
    return [
        (
            "50 ms, 64 in flight (workers 8/16/64)",
            engine,
            run,
            f"{ideal / run.wall:.2f} of ideal ({ideal:.1f} s)",
        )
        for engine, run in runs.items()
    ]


def client_bound(
    roots: int, fanout: str, threads: int, repeat: int, folder: Path, engines: list[str]
) -> list[Row]:
    """0 ms per answer: the client's own cost next to a plain httpx pool's, ``threads``
    calls in flight in both (resumer: that many level-3 workers, a few for levels 1-2)."""
    api, url = start_fake_api(roots, fanout, 0.0)
    workers = (max(1, threads // 8), max(1, threads // 4), threads)
    try:
        runs = by_engine(
            engines, repeat, lambda e: run_resumer(url, threads, workers, folder, engine=e)
        )
        plain = median_run([run_plain(url, threads, folder) for _ in range(repeat)])
    finally:
        api.terminate()
        api.wait()
    shape = "/".join(map(str, workers))
    rows: list[Row] = [
        (
            f"0 ms, {threads} in flight (workers {shape})",
            engine,
            run,
            f"{plain.wall / run.wall:.2f} of plain pool",
        )
        for engine, run in runs.items()
    ]
    rows.append((f"0 ms, plain httpx pool, {threads} threads", "httpx", plain, "baseline"))
    return rows


def scale(folder: Path, leaves: int = 100) -> list[Row]:
    """A million nodes (10 x 10 x 100 x 100, 0 ms; ten million with ``leaves`` = 1,000):
    the crawl, ``status``, ``export``, and ``resume`` after a kill -9 half-way (time until
    its first query reaches the API)."""
    roots, fanout = 10, f"10,100,{leaves}"
    queries, nodes = 1 + 10 + 100 + 10_000, 10 + 100 + 10_000 + 10_000 * leaves
    label = f"{nodes / 1e6:.0f}M nodes"
    rows: list[Row] = []
    api, url = start_fake_api(roots, fanout, 0.0)
    try:
        run = run_resumer(url, 16, (2, 4, 16), folder)
        db = max(folder.glob("job-*.db"), key=lambda p: p.stat().st_mtime)
        size = sum(p.stat().st_size for p in folder.glob(f"{db.name}*")) / 1e6
        rows.append((f"{label}: start, {nodes:,} nodes", "curl", run, f"database {size:.0f} MB"))
        cli = [sys.executable, "-m", "resumer"]
        status = min(
            (timed([*cli, "status", "--db", str(db)], folder) for _ in range(3)),
            key=lambda t: t[0],
        )
        rows.append((f"{label}: status", "", Run(status[0], status[1], 0), "best of 3"))
        out = folder / "export.json"
        wall, rss, _, _ = timed([*cli, "export", "--db", str(db), "-o", str(out)], folder)
        size = out.stat().st_size / 1e6
        rows.append((f"{label}: export", "", Run(wall, rss, 0), f"{size:.0f} MB of JSON"))
        out.unlink()
        rows.append(resume_after_kill(url, cli, folder, queries, label))
    finally:
        api.terminate()
        api.wait()
    return rows


def api_received(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_stats") as answer:
        return int(json.load(answer)["received"])


def resume_after_kill(url: str, cli: list[str], folder: Path, queries: int, label: str) -> Row:
    """Kill -9 a crawl of the scale tree half-way; time ``resume`` until its first query
    arrives, then let it finish."""
    job = max(folder.glob("job-*.toml"), key=lambda p: p.stat().st_mtime)
    db = folder / "killed.db"
    crawl = subprocess.Popen(
        [*cli, "start", str(job), "--db", str(db), "--log-level", "WARNING"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **pinned(CLIENT_CORE),  # type: ignore[call-overload]
    )
    base = api_received(url)
    while api_received(url) < base + queries // 2:
        time.sleep(0.02)  # polling the fake API's counter, not a synchronisation by time
    crawl.kill()
    crawl.wait()
    base = api_received(url)
    began = time.perf_counter()
    resume = subprocess.Popen(
        [*cli, "resume", "--db", str(db), "--log-level", "WARNING"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **pinned(CLIENT_CORE),  # type: ignore[call-overload]
    )
    polls = 1  # each poll is a request too
    while api_received(url) <= base + polls:
        polls += 1
        time.sleep(0.005)
    first_query = time.perf_counter() - began
    _, status, usage = os.wait4(resume.pid, 0)
    wall = time.perf_counter() - began
    if status != 0:
        raise SystemExit(f"resume failed with status {status}")
    return (
        f"{label}: resume after kill -9",
        "curl",
        Run(wall, usage.ru_maxrss / 1024, 0),
        f"first query after {first_query:.2f} s",
    )


def compile_package() -> None:
    """Write resumer's bytecode first, as an installed package has it (the environment may
    forbid writing it on import, which would charge every run with compiling)."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "resumer"), quiet=1)


def main() -> None:
    compile_package()
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small tree (5 x 10 x 20 x 10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    parser.add_argument(
        "--only",
        choices=("api", "client", "scale", "scale10m"),
        help="only the 50 ms (api), the 0 ms (client), the million-node (scale) runs, or the"
        " ten-million-node runs (scale10m: never part of the default run; about 10 minutes)",
    )
    parser.add_argument(
        "--engines", default="curl,httpx", help="the engines of the 50 ms and 0 ms rows, in turn"
    )
    args = parser.parse_args()
    engines = args.engines.split(",")
    roots, fanout = (5, "10,20,10") if args.quick else (20, "20,50,10")
    widths = [int(x) for x in fanout.split(",")]
    queries = 1 + roots + roots * widths[0] + roots * widths[0] * widths[1]
    nodes = roots * (1 + widths[0] * (1 + widths[1] * (1 + widths[2])))
    print(f"tree: {roots} x {fanout.replace(',', ' x ')}: {queries:,} queries, {nodes:,} nodes")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="resumer-bench-") as tmp:
        folder = Path(tmp)
        if args.only in (None, "api"):
            rows.extend(api_bound(roots, fanout, queries, args.repeat, folder, engines))
        if args.only in (None, "client"):
            for threads in (16, 64):
                rows.extend(client_bound(roots, fanout, threads, args.repeat, folder, engines))
        if args.only in (None, "scale") and not args.quick:
            rows.extend(scale(folder))
        if args.only == "scale10m":
            rows.extend(scale(folder, leaves=1000))
    print(
        f"| {'scenario':<42} | engine | {'wall s':>7} | {'queries/s':>9} | {'CPU us/query':>12} |"
        f" {'peak RSS MB':>11} | figure |"
    )
    print(f"|{'-' * 44}|--------|{'-' * 9}|{'-' * 11}|{'-' * 14}|{'-' * 13}|--------|")
    for name, engine, run, note in rows:
        rate = f"{run.queries / run.wall:,.0f}" if run.queries else ""
        cpu = f"{run.cpu / run.queries * 1e6:,.0f}" if run.queries and run.cpu else ""
        print(
            f"| {name:<42} | {engine:<6} | {run.wall:>7.2f} | {rate:>9} | {cpu:>12} |"
            f" {run.rss_mb:>11.1f} | {note} |"
        )


if __name__ == "__main__":
    main()
