"""The settings of a job: frozen once loaded, and a node's priority computed from them (its
parent's, plus its type's weight, plus its own root weight at level 1)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from resumer.job.loader import parse_job
from resumer.job.settings import Priority

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/features"\n[request]\nurl = "http://127.0.0.1:1/c"\n'


def test_settings_are_immutable() -> None:
    job = parse_job(MINIMAL, "job.toml")
    with pytest.raises(AttributeError):
        job.crawl.max_depth = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        job.request.params["id"] = "x"  # type: ignore[index]


def test_a_priority_inherits_the_parents_and_adds_the_type_and_root_weights() -> None:
    priority = Priority(
        "depth-first", MappingProxyType({"core": 5}), MappingProxyType({"F1": 100, "F1.1": 7})
    )
    assert priority.of(1, "F1", "core", 0) == 105
    assert priority.of(1, "F2", "edge", 0) == 0
    assert priority.of(2, "F1.1", "core", 105) == 110  # a root weight counts at level 1 only
    assert priority.of(3, "F1.1.1", "misc", 110) == 110
