"""A real nginx for bench/pacing.py: the tree as static JSON files, the config with
``limit_req``, the foreground process (started, reloaded with a new rate, stopped) and
its access log.

The tree: ``/features.json`` lists the level-1 nodes and ``/children/<id>.json`` the
children of ``<id>``, both as ``{"data": {"items": [{"id", "name", "type"}, ...]}}``;
ids are dotted paths (``F3.7.2``). Leaves have no file: they are never queried.

nginx runs as a plain foreground process (``daemon off``) with every file it writes
(pid, logs, temp folders) inside its own folder; it is never a service.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TYPES = ("core", "edge", "misc", "beta")

# What a refusal looks like: the lines that go into the /children location.
REFUSALS = {
    "429-retry-after": "limit_req_status 429;\n            error_page 429 = @throttled;",
    "429": "limit_req_status 429;",
    "503": "",  # nginx's default: 503, no Retry-After
}
REFUSAL_STATUS = {"429-retry-after": 429, "429": 429, "503": 503}

CONF = """\
worker_processes 1;
error_log @FOLDER@/error.log notice;
events { worker_connections 1024; }
http {
    default_type application/json;
    log_format pacing '$msec $status $request_uri';
    access_log @FOLDER@/access.log pacing;
    client_body_temp_path @FOLDER@/temp/body;
    proxy_temp_path @FOLDER@/temp/proxy;
    fastcgi_temp_path @FOLDER@/temp/fastcgi;
    uwsgi_temp_path @FOLDER@/temp/uwsgi;
    scgi_temp_path @FOLDER@/temp/scgi;
    # The key must not be empty (requests with an empty key are not limited),
    # hence the server_name below.
    limit_req_zone $server_name zone=api:1m rate=@RATE@;
    server {
        listen 127.0.0.1:@PORT@;
        server_name pacing;
        root @WWW@;
        location = /features.json { }
        location /children/ {
            limit_req zone=api burst=10 nodelay;
            @REFUSAL@
        }
        location @throttled {
            add_header Retry-After 1 always;
            return 429 '{"error":"slow down"}';
        }
    }
}
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None if it is not installed."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.access(found, os.X_OK) else None


def write_tree(www: Path, roots: int, fanout: int, depth: int) -> int:
    """Write the tree under ``www``; return how many nodes are queried (levels 1..depth-1)."""
    (www / "children").mkdir(parents=True, exist_ok=True)
    level = [_item(f"F{i}", i) for i in range(1, roots + 1)]
    _write_items(www / "features.json", level)
    queried = 0
    for _ in range(1, depth):
        below = []
        for parent in level:
            children = [_item(f"{parent['id']}.{i}", i) for i in range(1, fanout + 1)]
            _write_items(www / "children" / f"{parent['id']}.json", children)
            below.extend(children)
        queried += len(level)
        level = below
    return queried


def _item(node_id: str, position: int) -> dict[str, str]:
    return {"id": node_id, "name": f"Feature {node_id[1:]}", "type": TYPES[position % 4]}


def _write_items(path: Path, items: list[dict[str, str]]) -> None:
    path.write_text(json.dumps({"data": {"items": items}}))


def nginx_rate(per_second: float) -> str:
    """nginx's spelling of a rate: whole requests a second, else a minute (33.3 -> 2000r/m)."""
    if per_second == int(per_second):
        return f"{int(per_second)}r/s"
    return f"{round(per_second * 60)}r/m"


def render_conf(folder: Path, www: Path, port: int, rate: float, refusal: str) -> str:
    text = CONF.replace("@FOLDER@", str(folder)).replace("@WWW@", str(www))
    text = text.replace("@PORT@", str(port)).replace("@RATE@", nginx_rate(rate))
    return text.replace("@REFUSAL@", REFUSALS[refusal])


def wait_until_listening(
    process: subprocess.Popen[bytes], port: int, name: str, errors: Callable[[], str]
) -> None:
    """Wait (10 s at most) until a server started as ``process`` accepts connections on
    ``port``; a RuntimeError quoting ``errors()`` if it exits or never listens."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start: {errors()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{name} does not listen on {port}: {errors()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Call:
    """One line of the access log."""

    time: float  # $msec: seconds since the epoch, to the millisecond
    status: int
    uri: str  # $request_uri: path and query string

    @property
    def children(self) -> bool:
        """A children query: a file of the tree here, the fake API's behind a proxy."""
        return self.uri.startswith(("/children/", "/children?"))


def parse_line(line: str, unit: float = 1.0) -> Call | None:
    """One line; ``unit``: seconds per unit of its time (0.001: milliseconds)."""
    parts = line.split(" ", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return Call(float(parts[0]) * unit, int(parts[1]), parts[2].rstrip("\n"))


def read_access_log(path: Path, since: float = 0.0, unit: float = 1.0) -> list[Call]:
    """Every call logged at or after ``since`` (epoch seconds)."""
    with path.open() as log:
        calls = (parse_line(line, unit) for line in log)
        return [c for c in calls if c is not None and c.time >= since]


class LogTail:
    """Reads a log as it grows: each ``new_lines()`` gives the complete lines added since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = ""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open() as log:
            log.seek(self.offset)
            text = self._partial + log.read()
            self.offset = log.tell()
        *lines, self._partial = text.split("\n")
        return lines


class Nginx:
    """nginx in the foreground, in ``folder``, serving ``www`` with a ``limit_req`` of
    ``rate`` a second on /children; a refusal is one of ``REFUSALS``.

    >>> with Nginx(folder, www, 100, "429-retry-after") as server:  # doctest: +SKIP
    ...     server.set_rate(33)
    """

    def __init__(self, folder: Path, www: Path, rate: float, refusal: str) -> None:
        self.folder = folder
        self.www = www
        self.refusal = refusal
        self.rate = rate
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = folder / "nginx.conf"
        self.access_log = folder / "access.log"
        self.error_log = folder / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        binary = nginx_binary() or "nginx"
        folder = str(self.folder)
        options = f"daemon off; pid {folder}/nginx.pid;"
        # -e: the error log nginx uses before it has read the config.
        conf, errors = str(self.conf), str(self.error_log)
        return [binary, "-p", folder, "-c", conf, "-e", errors, "-g", options, *extra]

    def _write_conf(self) -> None:
        text = render_conf(self.folder, self.www, self.port, self.rate, self.refusal)
        self.conf.write_text(text)

    def start(self) -> Nginx:
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        self._write_conf()
        test = subprocess.run(self.command("-t", "-q"), capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx refuses its config: {test.stderr.strip()}")
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        wait_until_listening(self.process, self.port, "nginx", self._last_errors)

    def _last_errors(self) -> str:
        if not self.error_log.exists():
            return "(no error log)"
        return " | ".join(self.error_log.read_text().splitlines()[-3:])

    def set_rate(self, rate: float, timeout: float = 10.0) -> None:
        """Rewrite the config with ``rate`` and reload (SIGHUP to the master); returns once
        the master has started a worker with the new config. The zone keeps its state
        (same name and size)."""
        assert self.process is not None
        self.rate = rate
        self._write_conf()
        tail = LogTail(self.error_log)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in tail.new_lines():
                if re.search(r"start worker process \d+", line):
                    return
                if "[emerg]" in line:
                    raise RuntimeError(f"nginx refused the new config: {line}")
            time.sleep(0.005)
        raise RuntimeError("nginx did not start a worker with the new config")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Nginx:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_refusal(url: str, refusal: str, calls: int = 30) -> str | None:
    """Send ``calls`` requests at once to a children file: they must bring refusals with the
    variant's status, with ``Retry-After: 1`` exactly when the variant says so. Returns what
    is wrong, or None."""
    seen: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            with urllib.request.urlopen(f"{url}/children/F1.json", timeout=5) as answer:
                result = (answer.status, answer.headers.get("Retry-After"))
        except urllib.error.HTTPError as error:
            result = (error.code, error.headers.get("Retry-After"))
        with lock:
            seen.append(result)

    threads = [threading.Thread(target=one) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [header for status, header in seen if status == REFUSAL_STATUS[refusal]]
    wanted = "1" if refusal == "429-retry-after" else None
    if not refused:
        return f"no {REFUSAL_STATUS[refusal]} among {sorted(s for s, _ in seen)}"
    if any(header != wanted for header in refused):
        return f"Retry-After on the refusals: {sorted(set(map(str, refused)))}, wanted {wanted}"
    return None


def accepted_rate(url: str, seconds: float, send_rate: float) -> float:
    """Send to a children file at ``send_rate`` a second for ``seconds``, one call at a time;
    return how many were answered 200 a second."""
    began = time.monotonic()
    sent = accepted = 0
    while (now := time.monotonic()) < began + seconds:
        if now < began + sent / send_rate:
            time.sleep(began + sent / send_rate - now)
            continue
        sent += 1
        try:
            with urllib.request.urlopen(f"{url}/children/F1.json", timeout=5):
                accepted += 1
        except urllib.error.HTTPError:
            pass
    return accepted / seconds


def check_reload(server: Nginx, low: float, seconds: float = 2.0) -> tuple[float, float]:
    """Probe the limit at its rate, reload with ``low``, probe again, reload back: the rates
    accepted (200s a second, sending at 1.5 x the rate) before and after the reload."""
    high = server.rate
    before = accepted_rate(server.url, seconds, 1.5 * high)
    server.set_rate(low)
    after = accepted_rate(server.url, seconds, 1.5 * high)
    server.set_rate(high)
    return before, after
