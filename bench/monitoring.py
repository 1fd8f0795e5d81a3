"""Check the dashboard and the alerting rules against a real Prometheus scraping a crawl.

    python bench/monitoring.py              # about 20 s
    python bench/monitoring.py --keep DIR   # keep Prometheus's config, the job and the logs

Needs ``prometheus`` and ``promtool`` on PATH (Debian: ``apt-get install -y
--no-install-recommends prometheus``); says so and exits 0 when they are not there.
Prometheus runs as a plain process with a config in a temporary folder (never the
service), scraping resumer's ``/metrics`` every second.

What it does:

1. ``resumer fake-api`` (5% of calls answered 500, 50 ms latency, 4,440 queries) and
   ``resumer start`` with ``[metrics] port``, a ``[rate] per_second`` ceiling (so the
   send rate has a value) and ``[retry] attempts = 2`` (so some nodes fail for good and the failure
   series exist);
2. once the crawl has run for ``--warm`` seconds, every expression of every dashboard
   panel and of every alerting rule is evaluated through Prometheus's HTTP API
   (``/api/v1/query``; ``$job`` is the scrape job, ``$__rate_interval`` is 15s), and the
   script prints which return data, how many series and a sample value;
3. ``promtool check rules`` on ``resumer prometheus-rules`` and ``promtool check
   metrics`` on a scrape of ``/metrics``.

Exit status 1 if a panel's query returns nothing or promtool finds a problem.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resumer.ops.monitoring import PANELS, RULES

SCRAPE_JOB = "resumer-bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f}s")


def job_file(folder: Path, api: int, metrics: int) -> Path:
    path = folder / "job.toml"
    path.write_text(
        f"""[source]
url = "http://127.0.0.1:{api}/features"
[request]
url = "http://127.0.0.1:{api}/children"
[response]
items = "data.items"
[crawl]
http_concurrency = 8
[retry]
attempts = 2
initial = 0.05
[rate]
per_second = 200
[metrics]
port = {metrics}
""",
        encoding="utf-8",
    )
    return path


def prometheus_config(folder: Path, metrics: int) -> Path:
    path = folder / "prometheus.yml"
    path.write_text(
        f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {SCRAPE_JOB}
    static_configs:
      - targets: ["127.0.0.1:{metrics}"]
""",
        encoding="utf-8",
    )
    return path


def query(prometheus: str, expr: str) -> list[dict[str, object]]:
    concrete = expr.replace("$job", SCRAPE_JOB).replace("$__rate_interval", "15s")
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": concrete}, timeout=10)
    body = answer.json()
    if body.get("status") != "success":
        raise SystemExit(f"Prometheus refused {concrete!r}: {body.get('error')}")
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def shown(result: list[dict[str, object]]) -> str:
    if not result:
        return "no data"
    value = result[0]["value"]
    assert isinstance(value, list)
    return f"{len(result)} series, e.g. {value[1]}"


def check_promtool(folder: Path, metrics_text: str) -> bool:
    rules = folder / "rules.yml"
    rules.write_text(
        subprocess.run(
            [sys.executable, "-m", "resumer", "prometheus-rules"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout,
        encoding="utf-8",
    )
    ok = True
    done = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True
    )
    print(
        f"promtool check rules: exit {done.returncode}: {done.stdout.strip()} {done.stderr.strip()}"
    )
    ok &= done.returncode == 0
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=metrics_text, capture_output=True, text=True
    )
    lint = (done.stdout + done.stderr).strip() or "nothing to lint"
    print(f"promtool check metrics: exit {done.returncode}: {lint}")
    ok &= done.returncode == 0
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="keep the run's files here")
    parser.add_argument("--warm", type=float, default=15.0, help="seconds of crawl first")
    args = parser.parse_args()
    missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (apt-get install prometheus)")
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="resumer-monitoring-"))
    folder.mkdir(parents=True, exist_ok=True)
    api_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        fake = [sys.executable, "-m", "resumer", "fake-api", "--port", str(api_port)]
        fake += ["--roots", "40", "--fanout", "10,10,10", "--latency", "0.05"]
        fake += ["--error-rate", "0.05"]
        processes.append(
            subprocess.Popen(fake, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        wait_for(f"http://127.0.0.1:{api_port}/features")
        prometheus = [
            "prometheus",
            f"--config.file={prometheus_config(folder, metrics_port)}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        with (folder / "prometheus.log").open("wb") as log:
            processes.append(subprocess.Popen(prometheus, stdout=log, stderr=log))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_for(f"{prom}/-/ready")
        crawl = [
            sys.executable,
            "-m",
            "resumer",
            "start",
            str(job_file(folder, api_port, metrics_port)),
        ]
        crawl += ["--db", str(folder / "bench.db")]
        with (folder / "resumer.log").open("wb") as log:
            processes.append(subprocess.Popen(crawl, stdout=log, stderr=log, cwd=folder))
        wait_for(f"http://127.0.0.1:{metrics_port}/metrics")
        time.sleep(args.warm)  # the scrapes pile up: rate() needs a few
        metrics_text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        empty = 0
        print(f"dashboard panels against Prometheus at {prom} (scrape job {SCRAPE_JOB}):")
        for panel in PANELS:
            for legend, expr in panel.targets:
                result = query(prom, expr)
                empty += not result
                print(f"  {panel.title} [{legend}]: {shown(result)}")
        print("alerting rules (firing now or not; each must evaluate):")
        for rule in RULES:
            print(f"  {rule.alert}: {shown(query(prom, rule.expr))}")
        ok = check_promtool(folder, metrics_text)
        print(f"panels without data: {empty}")
        return 0 if ok and empty == 0 else 1
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
