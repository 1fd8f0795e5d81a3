"""What ops teams load: the Grafana dashboard, the alerting rules, ECS log lines, and the
live view's overall line. (That every series they query is exported by a real run is
checked against a real scrape in tests/integration/test_metrics.py.)"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import datetime

import pytest
from rich.console import Console

from resumer.cli.display import Progress, overall_text
from resumer.model import STATUSES, LiveFigures
from resumer.ops import logs, monitoring


def test_the_dashboard_asks_for_a_prometheus_source_and_every_panel_queries_it() -> None:
    model = json.loads(monitoring.dashboard_json())
    (source,) = model["__inputs"]
    assert (source["name"], source["pluginId"]) == ("DS_PROMETHEUS", "prometheus")
    (variable,) = model["templating"]["list"]
    assert variable["name"] == "job"
    assert "label_values(resumer_calls_total, job)" in variable["definition"]
    titles = [panel["title"] for panel in model["panels"]]
    assert len(set(titles)) == len(titles) >= 10
    for panel in model["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"], panel["title"]
    ids = [panel["id"] for panel in model["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "wanted",
    [
        "resumer_calls_total",
        "resumer_call_duration_seconds_bucket",
        "resumer_calls_in_flight",
        "resumer_concurrency_limit",
        "resumer_send_rate",
        "resumer_breaker_state",
        "resumer_nodes",
        "resumer_retries_total",
        "resumer_failures_total",
        "resumer_queries_done",
        "resumer_queries_estimated",
        "resumer_eta_seconds",
    ],
)
def test_the_dashboard_has_a_panel_for_each_figure_the_issue_names(wanted: str) -> None:
    exprs = [t["expr"] for p in monitoring.dashboard()["panels"] for t in p["targets"]]
    assert any(re.search(rf"\b{wanted}\b", expr) for expr in exprs)


def test_the_latency_panel_gives_three_quantiles_of_the_histogram() -> None:
    (panel,) = [p for p in monitoring.dashboard()["panels"] if p["title"] == "Call latency"]
    quantiles = [re.match(r"histogram_quantile\(([\d.]+),", t["expr"]) for t in panel["targets"]]
    assert [float(m.group(1)) for m in quantiles if m] == [0.5, 0.95, 0.99]


def test_the_rules_file_holds_the_four_alerts_with_a_for_and_a_summary() -> None:
    text = monitoring.rules_yaml()
    assert text.startswith("groups:\n  - name: resumer\n    rules:\n")
    alerts = re.findall(r"^      - alert: (\w+)$", text, re.MULTILINE)
    assert alerts == [
        "ResumerCrawlStalled",
        "ResumerErrorRateHigh",
        "ResumerBreakerOpen",
        "ResumerFailedNodes",
    ]
    for key in ("expr", "for", "summary"):
        assert len(re.findall(rf"^\s+{key}: \S", text, re.MULTILINE)) == 4, key
    for expr in re.findall(r"^        expr: (.*)$", text, re.MULTILINE):
        assert json.loads(expr) in monitoring.expressions()  # quoted so YAML reads it back


# -- ECS log lines -------------------------------------------------------------------------


def ecs_line(record: logging.LogRecord) -> dict[str, object]:
    logs.CONTEXT.filter(record)
    logs.REDACT.filter(record)
    line = logs.EcsFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert isinstance(document, dict)
    return document


def test_an_ecs_line_carries_the_required_fields_with_their_types() -> None:
    record = logging.LogRecord(
        "resumer.crawler.runner", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    record.tree_level, record.node = 2, "F1.3"
    document = ecs_line(record)
    assert list(document)[:3] == ["@timestamp", "log.level", "message"]
    stamp = document["@timestamp"]
    assert isinstance(stamp, str) and stamp.endswith("Z")
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None
    assert document["log.level"] == "warning"
    assert document["message"] == "hi x"
    assert document["log.logger"] == "resumer.crawler.runner"
    assert document["service.name"] == "resumer"
    assert re.fullmatch(r"8\.\d+\.\d+", str(document["ecs.version"]))
    assert document["labels.level"] == "2" and document["labels.node"] == "F1.3"
    assert isinstance(document["process.pid"], int)
    assert not [key for key in document if key.startswith("error.")]


def test_an_ecs_line_carries_the_error_and_masks_secrets_everywhere() -> None:
    secret = "s3cr3t-token-value"
    logs.REDACT.protect([secret])
    try:
        raise ValueError(f"the server said no to {secret}")
    except ValueError:
        record = logging.LogRecord(
            "resumer.query.client",
            logging.ERROR,
            __file__,
            1,
            "call with %s",
            (secret,),
            sys.exc_info(),
        )
    document = ecs_line(record)
    assert document["error.type"] == "ValueError"
    assert document["error.message"] == "the server said no to ***"
    assert "Traceback" in str(document["error.stack_trace"])
    assert secret not in json.dumps(document)


# -- the live view's overall line ----------------------------------------------------------


FIGURES = LiveFigures(
    breaker="closed",
    limit=16,
    in_flight=12,
    send_rate=95.0,
    done=2500,
    remaining=7500.0,
    queries_per_second=50.0,
    eta=150.0,
)


def test_the_overall_line_says_progress_elapsed_eta_and_how_the_run_fares() -> None:
    assert overall_text(FIGURES, elapsed=62.0) == (
        "queries 2,500 of ~10,000 (25%)   elapsed 1m02s   ETA ~2m30s   send rate 95.0 calls/s"
        "   in flight 12/16   breaker closed"
    )
    unknown = FIGURES._replace(eta=None, send_rate=None, done=0, remaining=0.0)
    assert overall_text(unknown, elapsed=0.0) == (
        "queries 0 of ~0   elapsed 0m00s   ETA ~unknown   send rate no limit   in flight 12/16"
        "   breaker closed"
    )


def test_the_live_view_renders_the_overall_line_under_the_levels() -> None:
    now = [100.0]
    counts = {
        1: {**dict.fromkeys(STATUSES, 0), "complete": 10},
        2: {**dict.fromkeys(STATUSES, 0), "waiting": 40, "pending": 60},
    }
    console = Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None)
    progress = Progress(lambda: counts, 4, console, lambda: FIGURES, clock=lambda: now[0])
    now[0] = 162.0
    console.print(progress.view())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "queries 2,500 of ~10,000 (25%)   elapsed 1m02s   ETA ~2m30s" in shown
    assert shown.index("40/100") < shown.index("queries 2,500")  # under the level bars
