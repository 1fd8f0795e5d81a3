"""Log lines: text or JSON, stamped with the job, level and node; files rotate by size."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumer.ops import logs
from resumer.policies.retry import NodeLabel


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logs.set_job("-")


def test_json_lines_carry_the_job_level_and_node(tmp_path: Path, restore_logging: None) -> None:
    logs.configure("INFO", tmp_path / "run.log", None, "json")
    logs.set_job("features.toml")
    label = NodeLabel(2, "F1.3")
    logging.getLogger("resumer.test").warning("retry %s", label, extra=label.context())
    logging.getLogger("resumer.test").info("job started")
    first, second = (json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines())
    assert first["job"] == "features.toml"
    assert (first["level"], first["node"], first["severity"]) == (2, "F1.3", "WARNING")
    assert first["message"] == "retry level 2 id 'F1.3'"
    assert (second["level"], second["node"]) == (None, None)


def test_text_lines_show_the_context(tmp_path: Path, restore_logging: None) -> None:
    logs.configure("INFO", tmp_path / "run.log", None, "text")
    logs.set_job("jobs.toml")
    label = NodeLabel(3, "F9")
    logging.getLogger("resumer.test").warning("failed", extra=label.context())
    line = (tmp_path / "run.log").read_text()
    assert "WARNING [jobs.toml level 3 F9] failed" in line


def test_the_log_file_rotates_by_size(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "LOG_FILE_BYTES", 2_000)
    logs.configure("INFO", tmp_path / "run.log", None, "text")
    for number in range(200):
        logging.getLogger("resumer.test").info("line %d of the crawl's log", number)
    assert (tmp_path / "run.log.1").exists()
    assert (tmp_path / "run.log").stat().st_size <= 2_000
    assert not (tmp_path / f"run.log.{logs.LOG_FILE_KEEP + 1}").exists()


def test_secrets_are_masked_in_json_too(tmp_path: Path, restore_logging: None) -> None:
    logs.configure("INFO", tmp_path / "run.log", None, "json")
    logs.protect(["hunter2"])
    logging.getLogger("resumer.test").error("token hunter2 refused")
    assert "hunter2" not in (tmp_path / "run.log").read_text()


def test_a_library_users_own_handler_gets_the_secrets_masked_too(
    restore_logging: None,
) -> None:
    """No ``configure``: a script that logs resumer's records its own way."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(Keep())
    worker = logging.getLogger("resumer.crawler.workers")
    logs.protect(["s3cr3t-t0ken"])
    worker.warning("failed: GET http://api/children?key=s3cr3t-t0ken")
    logging.getLogger("httpx").warning("HTTP Request: GET http://api/?key=s3cr3t-t0ken")
    assert len(seen) == 2
    assert not [line for line in seen if "s3cr3t-t0ken" in line]
