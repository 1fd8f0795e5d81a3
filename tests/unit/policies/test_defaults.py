"""The policies' defaults: a job file that sets none of ``[retry]``, ``[breaker]`` and
``[rate]`` gets exactly these, they make sense together (backoff within its cap, throttles
retried, HTTP statuses only), and the module imports nothing."""

from __future__ import annotations

import ast
from pathlib import Path

from resumer.job.loader import parse_job
from resumer.policies import defaults

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/features"\n[request]\nurl = "http://127.0.0.1:1/c"\n'


def test_a_job_that_sets_nothing_gets_the_defaults() -> None:
    job = parse_job(MINIMAL, "job.toml")
    assert (job.retry.attempts, job.retry.initial) == (
        defaults.DEFAULT_ATTEMPTS,
        defaults.DEFAULT_BACKOFF_INITIAL,
    )
    assert (job.retry.multiplier, job.retry.max) == (
        defaults.DEFAULT_BACKOFF_MULTIPLIER,
        defaults.DEFAULT_BACKOFF_MAX,
    )
    assert job.retry.retry_on == frozenset(defaults.DEFAULT_RETRY_ON)
    assert (job.breaker.failure_threshold, job.breaker.reset_timeout) == (
        defaults.DEFAULT_FAILURE_THRESHOLD,
        defaults.DEFAULT_RESET_TIMEOUT,
    )
    assert (job.rate.per_second, job.rate.burst, job.rate.adaptive) == (
        defaults.DEFAULT_RATE,
        defaults.DEFAULT_BURST,
        defaults.DEFAULT_PACING,
    )
    assert job.crawl.min_concurrency == defaults.DEFAULT_MIN_CONCURRENCY


def test_the_defaults_make_sense_together() -> None:
    assert defaults.DEFAULT_ATTEMPTS >= 1
    assert 0 < defaults.DEFAULT_BACKOFF_INITIAL <= defaults.DEFAULT_BACKOFF_MAX
    assert defaults.DEFAULT_BACKOFF_MULTIPLIER > 1
    assert {429, 503} <= set(defaults.DEFAULT_RETRY_ON)  # a throttle is worth a retry
    assert all(400 <= status <= 599 for status in defaults.DEFAULT_RETRY_ON)
    assert defaults.DEFAULT_FAILURE_THRESHOLD >= 1 and defaults.DEFAULT_RESET_TIMEOUT > 0
    assert defaults.DEFAULT_RATE >= 0 and defaults.DEFAULT_BURST >= 1
    assert defaults.DEFAULT_MIN_CONCURRENCY >= 1


def test_the_module_imports_nothing() -> None:
    """The read side loads the job's settings, and so this module: it must stay free."""
    tree = ast.parse(Path(defaults.__file__).read_text(encoding="utf-8"))
    imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    assert imports == []
