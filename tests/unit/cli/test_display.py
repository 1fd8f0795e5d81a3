"""The progress display: log lines when the output is not a terminal."""

from __future__ import annotations

import io
import logging
import threading

import pytest
from rich.console import Console

from resumer.cli import display
from resumer.model import STATUSES


class _FirstRecord(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.arrived.set()


def test_the_first_progress_line_already_has_a_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display, "LOG_EVERY", 0.001)
    done = 0

    def snapshot() -> dict[int, dict[str, int]]:
        nonlocal done
        done += 500  # queries finished between two looks
        return {1: {**dict.fromkeys(STATUSES, 0), "complete": done}}

    handler = _FirstRecord()
    logger = logging.getLogger(display.__name__)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        console = Console(file=io.StringIO(), force_terminal=False)
        with display.Progress(snapshot, leaf_level=4, console=console):
            assert handler.arrived.wait(timeout=10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    first = handler.messages[0]
    assert first.startswith("progress: level 1 ")
    assert " 0 queries/s" not in first


def test_the_progress_line_counts_queries_not_the_leaves_stored() -> None:
    counts = {
        1: {"pending": 0, "running": 0, "waiting": 1, "complete": 1, "failed": 0},
        2: {"pending": 3, "running": 1, "waiting": 0, "complete": 5, "failed": 1},
        3: {"pending": 0, "running": 0, "waiting": 0, "complete": 40, "failed": 0},
    }
    rates = {1: 0.5, 2: 8.5, 3: 34.0}  # level 3 holds leaves: 34 stored a second
    line = display.progress_line(counts, rates, leaf_level=3)
    assert line == "progress: level 1 2/2, level 2 6/10, level 3 40/40; 9 queries/s; 1 failed"
