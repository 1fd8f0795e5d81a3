"""Prometheus metrics of a run, served over HTTP with prometheus_client.

The gate reports every call (``observe_call``), the coordinator every stored
result (``observe_results``); gauges read the live state (in flight, limit,
breaker, nodes per level and status) when scraped. A registry of its own per
run, so nothing leaks between runs in one process.

Series (all prefixed ``resumer_``): ``calls_total{level,outcome,code}``,
``call_duration_seconds{level}`` (histogram), ``calls_in_flight``,
``concurrency_limit``, ``breaker_state{resumer_breaker_state}``,
``nodes{level,status}``, ``retries_total``, ``failures_total{level}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from resumer.model import STATUSES, Failure, Result

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        for level, by_status in sorted(self.counts().items()):
            for status in STATUSES:
                family.add_metric([str(level), status], by_status.get(status, 0))
        yield family


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
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "resumer_calls", "HTTP calls, by level, outcome and status code",
            ["level", "outcome", "code"], registry=r,
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
        self._breaker = Enum(
            "resumer_breaker_state", "Circuit breaker state",
            states=["closed", "half-open", "open"], registry=r,
        )  # fmt: skip
        self._breaker_state = breaker
        self._breaker.state(breaker())
        r.register(_Nodes(counts))
        self._server: Any = None

    def observe_call(self, level: int, outcome: str, code: int | None, seconds: float) -> None:
        self.calls.labels(str(level), outcome, str(code) if code else "none").inc()
        self.latency.labels(str(level)).observe(seconds)
        self._breaker.state(self._breaker_state())

    def observe_results(self, results: Iterable[Result]) -> None:
        for result in results:
            if result.attempts > 1:
                self.retries.inc(result.attempts - 1)
            if isinstance(result, Failure):
                self.failures.labels(str(result.level)).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` (a thread of its own) until ``close``."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics at http://%s:%d/metrics", host, self._server.server_port)

    @property
    def port(self) -> int | None:
        return None if self._server is None else int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
