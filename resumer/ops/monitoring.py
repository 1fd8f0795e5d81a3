"""What an ops team loads into its own monitoring: a Grafana dashboard and Prometheus rules.

Both are built from resumer's metric names (``metrics.py``) and printed by the
CLI (``resumer dashboard``, ``resumer prometheus-rules``); nothing here talks to
a server. The alerting rules mirror the in-process ``[alerts]`` (``alerts.py``)
with the same defaults a team would start from: a stalled crawl, a high error
rate, a breaker open too long, failed nodes.

Every PromQL expression is a plain string, so a test can check that each names
only series a real run exports, and ``bench/monitoring.py`` can evaluate each
against a real Prometheus.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

JOB = 'job=~"$job"'  # every panel's selector: the dashboard's job variable
RATE = "$__rate_interval"  # Grafana's choice of range for rate()

# The in-process alerts' rules, as Prometheus alerting rules: (name, expression,
# for, severity, summary). Thresholds are starting points; edit them to taste.
STALL = "10m"  # no query finished for this long while work is left
ERROR_RATE = 0.5  # share of calls that failed or were throttled ...
ERROR_WINDOW = "5m"  # ... over this window
BREAKER_OPEN = "5m"  # the breaker open for this long


class Panel(NamedTuple):
    """One dashboard panel: its title, kind, unit and queries (legend, PromQL)."""

    title: str
    kind: str  # Grafana panel type: timeseries, stat, state-timeline
    unit: str
    targets: tuple[tuple[str, str], ...]
    description: str


def _quantile(q: float) -> tuple[str, str]:
    expr = (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(resumer_call_duration_seconds_bucket{{{JOB}}}[{RATE}])))"
    )
    return f"p{round(q * 100)}", expr


PANELS: tuple[Panel, ...] = (
    Panel(
        "Progress",
        "stat",
        "percentunit",
        (
            (
                "done",
                f"sum(resumer_queries_done{{{JOB}}}) / sum(resumer_queries_estimated{{{JOB}}})",
            ),
        ),
        "Queries done of the estimated total (the estimate `resumer status` gives).",
    ),
    Panel(
        "ETA",
        "stat",
        "s",
        (("ETA", f"max(resumer_eta_seconds{{{JOB}}})"),),
        "Time left at the pace of the last minute; empty until a pace is known.",
    ),
    Panel(
        "Queries done and estimated",
        "timeseries",
        "short",
        (
            ("done", f"sum(resumer_queries_done{{{JOB}}})"),
            ("estimated", f"sum(resumer_queries_estimated{{{JOB}}})"),
        ),
        "Queries finished, and the estimate of the whole crawl (it grows as the tree is found).",
    ),
    Panel(
        "Calls per second by level and outcome",
        "timeseries",
        "reqps",
        (
            (
                "level {{level}} {{outcome}}",
                f"sum by (level, outcome) (rate(resumer_calls_total{{{JOB}}}[{RATE}]))",
            ),
        ),
        "HTTP calls a second; outcome is success, throttle, failure or permanent.",
    ),
    Panel(
        "Call latency",
        "timeseries",
        "s",
        (_quantile(0.5), _quantile(0.95), _quantile(0.99)),
        "p50, p95 and p99 of the HTTP call duration, from the histogram.",
    ),
    Panel(
        "Calls in flight and the limit",
        "timeseries",
        "short",
        (
            ("in flight", f"sum(resumer_calls_in_flight{{{JOB}}})"),
            ("limit", f"sum(resumer_concurrency_limit{{{JOB}}})"),
        ),
        "Calls in flight against the in-flight limit (adaptive concurrency moves the limit).",
    ),
    Panel(
        "Send rate",
        "timeseries",
        "reqps",
        (("send rate", f"resumer_send_rate{{{JOB}}}"),),
        "Calls a second the pacer allows now; no line while nothing limits the rate.",
    ),
    Panel(
        "Circuit breaker",
        "state-timeline",
        "short",
        (
            (
                "{{resumer_breaker_state}}",
                f"max by (resumer_breaker_state) (resumer_breaker_state{{{JOB}}}) == 1",
            ),
        ),
        "The breaker's state over time: closed, half-open or open.",
    ),
    Panel(
        "Nodes by level and status",
        "timeseries",
        "short",
        (
            (
                "level {{level}} {{status}}",
                f"sum by (level, status) (resumer_nodes{{{JOB}}})",
            ),
        ),
        "Nodes in the checkpoint: pending, running, waiting (for their subtree), complete, failed.",
    ),
    Panel(
        "Retries and failures",
        "timeseries",
        "short",
        (
            ("retries/s", f"sum(rate(resumer_retries_total{{{JOB}}}[{RATE}]))"),
            (
                "failed nodes/s, level {{level}}",
                f"sum by (level) (rate(resumer_failures_total{{{JOB}}}[{RATE}]))",
            ),
            ("failed nodes", f'sum(resumer_nodes{{{JOB},status="failed"}})'),
        ),
        "Calls beyond a query's first, nodes failed for good, and the failed nodes in all.",
    ),
)


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard (JSON model), importable as is: it asks for a Prometheus
    data source on import and has a ``job`` variable (the scrape job's label)."""
    datasource = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = []
    for number, panel in enumerate(PANELS):
        width = 6 if panel.kind == "stat" else 12
        x = (number * 6) % 24 if number < 2 else ((number - 2) % 2) * 12
        y = 0 if number < 2 else 6 + ((number - 2) // 2) * 8
        panels.append(
            {
                "id": number + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": datasource,
                "gridPos": {"h": 6 if number < 2 else 8, "w": width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {},
                "targets": [
                    {
                        "refId": chr(ord("A") + index),
                        "datasource": datasource,
                        "expr": expr,
                        "legendFormat": legend,
                    }
                    for index, (legend, expr) in enumerate(panel.targets)
                ],
            }
        )
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes resumer's /metrics",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
        ],
        "title": "resumer",
        "uid": "resumer-crawl",
        "tags": ["resumer"],
        "timezone": "browser",
        "schemaVersion": 36,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "job",
                    "label": "job",
                    "type": "query",
                    "datasource": datasource,
                    "query": {"query": "label_values(resumer_calls_total, job)", "refId": "job"},
                    "definition": "label_values(resumer_calls_total, job)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".+",
                    "current": {},
                }
            ]
        },
        "panels": panels,
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


class Rule(NamedTuple):
    """One Prometheus alerting rule."""

    alert: str
    expr: str
    duration: str  # the rule's ``for``
    severity: str
    summary: str


RULES: tuple[Rule, ...] = (
    Rule(
        "ResumerCrawlStalled",
        f"delta(resumer_queries_done[{STALL}]) <= 0"
        " and on (job, instance) resumer_queries_estimated - resumer_queries_done > 0",
        "1m",
        "warning",
        f"resumer job {{{{ $labels.job }}}}: no query finished for {STALL} while work is left",
    ),
    Rule(
        "ResumerErrorRateHigh",
        f'sum by (job, instance) (rate(resumer_calls_total{{outcome=~"failure|throttle"}}'
        f"[{ERROR_WINDOW}])) / sum by (job, instance) (rate(resumer_calls_total[{ERROR_WINDOW}]))"
        f" > {ERROR_RATE}",
        "2m",
        "warning",
        f"resumer job {{{{ $labels.job }}}}: more than {ERROR_RATE:.0%} of calls failed or were"
        f" throttled over {ERROR_WINDOW}",
    ),
    Rule(
        "ResumerBreakerOpen",
        'resumer_breaker_state{resumer_breaker_state="open"} == 1',
        BREAKER_OPEN,
        "critical",
        f"resumer job {{{{ $labels.job }}}}: the circuit breaker has been open for {BREAKER_OPEN}"
        " (the API is down or refusing calls)",
    ),
    Rule(
        "ResumerFailedNodes",
        'sum by (job, instance) (resumer_nodes{status="failed"}) > 0',
        "0m",
        "warning",
        "resumer job {{ $labels.job }}: {{ $value }} node(s) failed for good"
        " (see: resumer failed; resume --retry-failed once fixed)",
    ),
)


def rules_yaml() -> str:
    """The alerting rules as a Prometheus rule file (YAML; strings JSON-quoted, which
    YAML reads as they are)."""
    lines = ["groups:", "  - name: resumer", "    rules:"]
    for rule in RULES:
        lines += [
            f"      - alert: {rule.alert}",
            f"        expr: {json.dumps(rule.expr)}",
            f"        for: {rule.duration}",
            "        labels:",
            f"          severity: {rule.severity}",
            "        annotations:",
            f"          summary: {json.dumps(rule.summary)}",
        ]
    return "\n".join(lines) + "\n"


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard and the rules (for tests and the bench)."""
    return [expr for panel in PANELS for _, expr in panel.targets] + [r.expr for r in RULES]
