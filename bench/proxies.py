"""Proxies in front of the fake API, for bench/pacing.py: nginx as a plain reverse proxy
(when the fake API behind it is down, it answers 502) and HAProxy with a stick-table
limit on the request rate (429 with ``Retry-After: 1``).

Both run as plain foreground processes (nginx ``daemon off``, HAProxy ``-db``) with
every file they write inside their own folder, and are stopped by their pid; neither is
ever a service. Both log each call as ``<time> <status> <uri>``, nginx's time in seconds
(``$msec``), HAProxy's in milliseconds (``date(0,ms)``): ``nginx_tree.read_access_log``
reads either, given the unit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from nginx_tree import Nginx, free_port, wait_until_listening

PROXY_CONF = """\
worker_processes 1;
error_log @FOLDER@/error.log notice;
events { worker_connections 1024; }
http {
    log_format pacing '$msec $status $request_uri';
    access_log @FOLDER@/access.log pacing;
    client_body_temp_path @FOLDER@/temp/body;
    proxy_temp_path @FOLDER@/temp/proxy;
    fastcgi_temp_path @FOLDER@/temp/fastcgi;
    uwsgi_temp_path @FOLDER@/temp/uwsgi;
    scgi_temp_path @FOLDER@/temp/scgi;
    # One server: nginx never marks it unavailable (max_fails does not apply), so each
    # call finds it down or up as it is.
    upstream backend {
        server 127.0.0.1:@BACKEND@;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""

HAPROXY_CONF = """\
global
    log stdout format raw local0
defaults
    mode http
    log global
    log-format "%[date(0,ms)] %ST %HU"
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend api
    bind 127.0.0.1:@PORT@
    # A sliding rate over the last second; refused calls are counted too.
    stick-table type ip size 1k expire 10s store http_req_rate(1s)
    http-request track-sc0 src if { path_beg /children }
    http-request deny deny_status 429 if { path_beg /children } { sc_http_req_rate(0) gt @RATE@ }
    http-after-response set-header Retry-After 1 if { status 429 }
    default_backend fake
backend fake
    server fake 127.0.0.1:@BACKEND@
"""


class NginxProxy(Nginx):
    """nginx in the foreground, in ``folder``, passing every call to the server on
    ``backend_port`` (no limit of its own).

    >>> with NginxProxy(folder, 8808) as proxy:  # doctest: +SKIP
    ...     print(proxy.url)
    """

    def __init__(self, folder: Path, backend_port: int) -> None:
        super().__init__(folder, folder, 0.0, "503")  # no tree, no limit_req
        self.backend_port = backend_port

    def _write_conf(self) -> None:
        text = PROXY_CONF.replace("@FOLDER@", str(self.folder)).replace("@PORT@", str(self.port))
        self.conf.write_text(text.replace("@BACKEND@", str(self.backend_port)))


def haproxy_binary() -> str | None:
    """The haproxy executable, or None if it is not installed."""
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if os.access(found, os.X_OK) else None


class HAProxy:
    """HAProxy in the foreground, in ``folder``, in front of the server on ``backend_port``,
    refusing calls to /children beyond ``rate`` in the last second (429, ``Retry-After: 1``).

    >>> with HAProxy(folder, 8808, 100) as proxy:  # doctest: +SKIP
    ...     print(proxy.url)
    """

    log_unit = 0.001  # its log's times are milliseconds

    def __init__(self, folder: Path, backend_port: int, rate: float) -> None:
        self.folder = folder
        self.backend_port = backend_port
        self.rate = rate
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = folder / "haproxy.cfg"
        self.access_log = folder / "access.log"
        self.error_log = folder / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _write_conf(self) -> None:
        text = HAPROXY_CONF.replace("@PORT@", str(self.port)).replace("@RATE@", f"{self.rate:.0f}")
        self.conf.write_text(text.replace("@BACKEND@", str(self.backend_port)))

    def start(self) -> HAProxy:
        self._write_conf()
        binary = haproxy_binary() or "haproxy"
        test = subprocess.run([binary, "-c", "-q", "-f", str(self.conf)], capture_output=True)
        if test.returncode != 0:
            errors = (test.stdout + test.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"haproxy refuses its config {self.conf}: {errors}")
        with self.access_log.open("wb") as log, self.error_log.open("wb") as errors_out:
            self.process = subprocess.Popen(
                [binary, "-f", str(self.conf), "-db"], stdout=log, stderr=errors_out
            )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        wait_until_listening(self.process, self.port, "haproxy", self.error_log.read_text)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGUSR1)  # soft stop: ends once its calls are done
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> HAProxy:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
