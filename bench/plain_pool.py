"""The baseline: a plain httpx thread pool crawling the fake API's tree, no checkpoint.

Used by bench/crawl.py to put resumer's figures next to the bare cost of the
HTTP calls with the same number of threads. Prints the number of queries.
"""

from __future__ import annotations

import argparse
import queue
import threading

import httpx


def crawl(base: str, threads: int, max_depth: int) -> int:
    client = httpx.Client(limits=httpx.Limits(max_connections=threads))
    roots = client.get(f"{base}/features").json()["data"]["items"]
    work: queue.Queue[tuple[dict[str, str], int] | None] = queue.Queue()
    lock = threading.Lock()
    open_count = len(roots)
    done = threading.Event()
    queries = 0
    for item in roots:
        work.put((item, 1))

    def worker() -> None:
        nonlocal open_count, queries
        while True:
            task = work.get()
            if task is None:
                return
            item, level = task
            params = {"id": item["id"], "name": item["name"], "type": item["type"]}
            children = client.get(f"{base}/children", params=params).json()["data"]["items"]
            with lock:
                queries += 1
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
    return queries + 1  # the root list is a query too


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--max-depth", type=int, default=4)
    args = parser.parse_args()
    print(crawl(args.base, args.threads, args.max_depth))
