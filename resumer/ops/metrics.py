"""Prometheus metrics of a run, served over HTTP with prometheus_client.

The gate reports every call (``observe_call``), the coordinator every stored
result (``observe_results``); gauges read the live state (in flight, limit,
breaker, nodes per level and status) when scraped. A registry of its own per
run, so nothing leaks between runs in one process.

Series (all prefixed ``resumer_``): ``calls_total{level,outcome,code}``,
``call_duration_seconds{level}`` (histogram), ``calls_in_flight``,
``concurrency_limit``, ``breaker_state{resumer_breaker_state}``,
``nodes{level,status}``, ``retries_total``, ``failures_total{level}``,
``queries_done``, ``queries_estimated``, ``eta_seconds``, ``run_start_time_seconds``,
``send_rate``.

The server is prometheus_client's WSGI app behind a server of our own, so
that nothing a scrape meets reaches stderr or ends the server: a collector
that raises answers 500 (one WARNING line, the traceback at DEBUG), a client
that goes away mid-answer is a DEBUG line.

Tested by tests/integration/test_metrics.py, tests/integration/test_pacing.py and
tests/integration/test_watchdog.py.
"""

from __future__ import annotations

import logging
import math
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import ErrorStream, StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from resumer.errors import describe
from resumer.model import STATUSES, Failure, LiveFigures, Result
from resumer.policies.gate import CallOutcome

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCRAPE_TIMEOUT = 30.0  # seconds a scraper may take to send its request or read the answer
_GONE = (ConnectionError, TimeoutError)  # the scraper went away or stalled: not our fault


class _Nodes(Collector):
    """``resumer_nodes{level,status}``, counted from the checkpoint at scrape time."""

    def __init__(self, counts: Callable[[], Mapping[int, Mapping[str, int]]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "resumer_nodes",
            "Nodes in the checkpoint, by level and status",
            labels=["level", "status"],
        )
        leaves = GaugeMetricFamily(
            "resumer_leaves_by_rule",
            "Nodes stored as leaves by a [[crawl.leaf]] rule (among the complete), by level",
            labels=["level"],
        )
        dropped = GaugeMetricFamily(
            "resumer_items_dropped",
            "Items a [[crawl.drop]] rule left out (not stored), by level",
            labels=["level"],
        )
        for level, by_status in sorted(self.counts().items()):
            for status in STATUSES:
                family.add_metric([str(level), status], by_status.get(status, 0))
            leaves.add_metric([str(level)], by_status.get("leaf_by_rule", 0))
            dropped.add_metric([str(level)], by_status.get("dropped", 0))
        yield family
        yield leaves
        yield dropped


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


class Metrics:
    """The metrics of one run.

    >>> metrics = Metrics(counts=store.counts, in_flight=lambda: 3, limit=lambda: 16,
    ...                   breaker=lambda: "closed")          # doctest: +SKIP
    >>> metrics.serve(9108)                                   # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        counts: Callable[[], Mapping[int, Mapping[str, int]]],
        in_flight: Callable[[], int],
        limit: Callable[[], int],
        breaker: Callable[[], str],
        send_rate: Callable[[], float | None] = lambda: None,
        progress: Callable[[], LiveFigures] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "resumer_calls",
            "HTTP calls, by level, outcome, status code and the [[response.rule]] that decided"
            " the answer (none: its status did)",
            ["level", "outcome", "code", "rule"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "resumer_call_duration_seconds", "HTTP call latency, by level",
            ["level"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries = Counter("resumer_retries", "Calls beyond the first of a query", registry=r)
        self.failures = Counter(
            "resumer_failures", "Nodes whose query failed for good, by level", ["level"], registry=r
        )
        Gauge("resumer_calls_in_flight", "HTTP calls in flight", registry=r).set_function(in_flight)
        Gauge(
            "resumer_concurrency_limit", "HTTP calls allowed in flight now", registry=r
        ).set_function(limit)
        Gauge(
            "resumer_send_rate", "HTTP calls a second the pacer allows now (NaN: no limit)",
            registry=r,
        ).set_function(lambda: _or_nan(send_rate()))  # fmt: skip
        if progress is not None:
            self._progress_gauges(progress)
        Gauge(
            "resumer_run_start_time_seconds", "When this run started, in seconds since the epoch",
            registry=r,
        ).set_to_current_time()  # fmt: skip
        self._breaker = Enum(
            "resumer_breaker_state", "Circuit breaker state",
            states=["closed", "half-open", "open"], registry=r,
        )  # fmt: skip
        self._breaker_state = breaker
        self._breaker.state(breaker())
        r.register(_Nodes(counts))
        self._server: _Server | None = None

    def _progress_gauges(self, progress: Callable[[], LiveFigures]) -> None:
        """The overall progress and the ETA, the estimate ``status`` gives."""
        r = self.registry
        Gauge(
            "resumer_queries_done", "Queries finished (children stored, or failed for good)",
            registry=r,
        ).set_function(lambda: progress().done)  # fmt: skip
        Gauge(
            "resumer_queries_estimated",
            "Queries the whole crawl is estimated to take: those done and an estimate of those"
            " left (from the frontier and the mean fan-out per level so far)",
            registry=r,
        ).set_function(lambda: progress().estimated_total)
        Gauge(
            "resumer_eta_seconds",
            "Seconds the crawl is estimated to need still, at the pace of the last minute"
            " (NaN: not known yet)",
            registry=r,
        ).set_function(lambda: _or_nan(progress().eta))
        Gauge(
            "resumer_paused_until_seconds",
            "When the wait the API asked for ends, every call waiting (Unix time; 0: no wait)",
            registry=r,
        ).set_function(lambda: progress().paused_until or 0.0)

    def observe_call(self, level: int, outcome: CallOutcome, seconds: float) -> None:
        code = str(outcome.status) if outcome.status else "none"
        rule = str(outcome.rule) if outcome.rule is not None else "none"
        self.calls.labels(str(level), outcome.kind, code, rule).inc()
        self.latency.labels(str(level)).observe(seconds)
        self._breaker.state(self._breaker_state())

    def observe_results(self, results: Iterable[Result]) -> None:
        for result in results:
            if result.attempts > 1:
                self.retries.inc(result.attempts - 1)
            if isinstance(result, Failure):
                self.failures.labels(str(result.level)).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` (a thread of its own) until ``close``.

        ``OSError`` if it cannot listen there.
        """
        server = _Server(host, port)
        server.set_app(_guarded(make_wsgi_app(self.registry)))
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._server = server
        log.info("metrics at http://%s:%d/metrics", host, server.server_port)

    @property
    def port(self) -> int | None:
        """The port served on (the one chosen when ``serve`` was given 0), or None."""
        return None if self._server is None else int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _guarded(app: WSGIApplication) -> WSGIApplication:
    """``app``, answering 500 instead of raising (a collector or a gauge's function failed)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception as error:
            log.warning("metrics: a scrape failed: %s", describe(error))
            log.debug("metrics: the scrape's traceback", exc_info=error)
            body = f"# scrape failed: {describe(error)}\n".encode()
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            start_response("500 Internal Server Error", headers)
            return [body]

    return guarded


class _Handler(WSGIRequestHandler):
    """No access log; what wsgiref would print to stderr goes to the log at DEBUG."""

    timeout = SCRAPE_TIMEOUT  # a scraper that stalls cannot hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> ErrorStream:
        return _DebugLog()


class _DebugLog:
    """A stream for wsgiref's error reports: one DEBUG record per flush."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str, /) -> int:
        self._parts.append(text)
        return len(text)

    def writelines(self, lines: list[str], /) -> None:
        self._parts.extend(lines)

    def flush(self) -> None:
        if self._parts:
            log.debug("metrics: %s", "".join(self._parts).rstrip())
            self._parts.clear()


class _Server(ThreadingMixIn, WSGIServer):
    """A thread per scrape; an error in one is logged, never printed, never fatal."""

    daemon_threads = True  # a scrape in progress never holds up the end of the run

    def __init__(self, host: str, port: int) -> None:
        # IPv4 or IPv6, as the host says (the base class assumes IPv4).
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        self.address_family = info[0][0]
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, _GONE):
            log.debug("metrics: scraper %s went away (%s)", client_address, describe(error))
        elif error is not None:
            log.warning("metrics: a scrape from %s failed: %s", client_address, describe(error))
            log.debug("metrics: the scrape's traceback", exc_info=error)
