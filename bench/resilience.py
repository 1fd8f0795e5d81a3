"""Benchmark: goodput under faults, and adaptive concurrency against the best fixed one.

    python bench/resilience.py

1. Fault mix (5% HTTP 500, 5% 429 with Retry-After: 0.1, 2% answers slower
   than the 1 s timeout, 2% dropped connections) against the same tree
   fault-free, at 50 ms and 64 in flight: goodput is useful queries per second.
2. A server that refuses (429) more than 16 calls at once and slows down past
   them: adaptive concurrency (up to 64) against fixed limits of 8, 16 and 32.

Figures, not assertions. The fake API runs in its own process on its own core.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path

from crawl import Run, compile_package, run_resumer, start_fake_api

FAULTS = [
    "--error-rate", "0.05", "--throttle-rate", "0.05", "--retry-after", "0.1",
    "--slow-rate", "0.02", "--slow-delay", "2", "--drop-rate", "0.02",
]  # fmt: skip
RESILIENT = """
[retry]
attempts = 10
initial = 0.05
max = 2.0
[breaker]
failure_threshold = 20
reset_timeout = 1.0
"""


def fake_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_stats", timeout=10) as answer:
        statuses: dict[str, int] = json.load(answer)["statuses"]
    return statuses


def crawl(
    roots: int,
    fanout: str,
    faults: list[str],
    folder: Path,
    concurrency: int,
    latency: float = 0.02,
    **job: str,
) -> tuple[Run, dict[str, int]]:
    api, url = start_fake_api(roots, fanout, latency, *faults)
    try:
        run = run_resumer(url, concurrency, (4, 16, concurrency), folder, **job)
        return run, fake_stats(url)
    finally:
        api.terminate()
        api.wait()


def report(name: str, run: Run, statuses: dict[str, int], note: str = "") -> None:
    calls = sum(statuses.values())
    refused = statuses.get("429", 0) / calls if calls else 0.0
    print(
        f"{name:<34} {run.wall:>7.2f} {run.queries / run.wall:>9,.0f} {calls:>8,}"
        f" {refused:>7.1%}  {note}"
    )


def main() -> None:
    compile_package()
    print(f"{'scenario':<34} {'wall s':>7} {'goodput':>9} {'calls':>8} {'429s':>7}")
    with tempfile.TemporaryDirectory(prefix="resumer-bench-") as tmp:
        folder = Path(tmp)
        clean, clean_stats = crawl(20, "20,50,10", [], folder, 64, 0.05, extra=RESILIENT)
        report("fault-free, 50 ms, 64 in flight", clean, clean_stats, "baseline")
        mixed, mixed_stats = crawl(
            20, "20,50,10", FAULTS, folder, 64, 0.05, extra=RESILIENT, request_extra="timeout = 1.0"
        )
        ratio = (mixed.queries / mixed.wall) / (clean.queries / clean.wall)
        report("fault mix, 50 ms, 64 in flight", mixed, mixed_stats, f"{ratio:.2f} of fault-free")
        overload = ["--max-inflight", "16"]
        best = None
        for fixed in (8, 16, 32):
            run, stats = crawl(10, "20,25,2", overload, folder, fixed, extra=RESILIENT)
            report(f"server takes 16; fixed {fixed}", run, stats)
            rate = run.queries / run.wall
            best = rate if best is None or rate > best else best
        adaptive, stats = crawl(
            10, "20,25,2", overload, folder, 64, extra=RESILIENT, crawl_extra="adaptive = true"
        )
        ratio = (adaptive.queries / adaptive.wall) / (best or 1.0)
        report("server takes 16; adaptive <= 64", adaptive, stats, f"{ratio:.2f} of best fixed")


if __name__ == "__main__":
    main()
