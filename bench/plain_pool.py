"""The baseline: a plain httpx thread pool crawling the fake API's tree, no checkpoint.

Used by bench/crawl.py to put resumer's figures next to the bare cost of the
HTTP calls with the same number of threads. Prints the number of queries; a
query that fails (an HTTP error status, a dropped connection, a body not of the
expected shape) counts as done, without children, and is reported on stderr.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading

import httpx


def query(client: httpx.Client, base: str, item: dict[str, str]) -> list[dict[str, str]] | None:
    """``item``'s children; None if the query failed in any way (a worker thread that
    died on it would leave the pool waiting for ever)."""
    params = {"id": item["id"], "name": item["name"], "type": item["type"]}
    try:
        answer = client.get(f"{base}/children", params=params)
        answer.raise_for_status()
        children: list[dict[str, str]] = answer.json()["data"]["items"]
    except Exception:
        return None
    return children


def crawl(base: str, threads: int, max_depth: int) -> int:
    client = httpx.Client(limits=httpx.Limits(max_connections=threads))
    roots = client.get(f"{base}/features").json()["data"]["items"]
    work: queue.Queue[tuple[dict[str, str], int] | None] = queue.Queue()
    lock = threading.Lock()
    open_count = len(roots)
    done = threading.Event()
    queries = errors = 0
    for item in roots:
        work.put((item, 1))

    def worker() -> None:
        nonlocal open_count, queries, errors
        while True:
            task = work.get()
            if task is None:
                return
            item, level = task
            children = query(client, base, item)
            with lock:
                queries += 1
                errors += children is None
                children = children or []
                if level + 1 < max_depth:
                    open_count += len(children)
                    for child in children:
                        work.put((child, level + 1))
                open_count -= 1
                if open_count == 0:
                    done.set()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    if roots:
        done.wait()
    for _ in pool:
        work.put(None)
    if errors:
        print(f"{errors} of {queries} queries failed", file=sys.stderr)
    return queries + 1  # the root list is a query too


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--max-depth", type=int, default=4)
    args = parser.parse_args()
    print(crawl(args.base, args.threads, args.max_depth))
