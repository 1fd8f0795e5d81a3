"""Logging setup: where lines go, their format, and masking of secrets.

Every handler carries ``REDACT``, a filter that masks the values of the job's
``${VAR}``s in each formatted line, so no secret reaches a log whatever code
logged it. ``protect`` registers the values once they are read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from resumer.template import Redactor

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class RedactingFilter(logging.Filter):
    """Masks registered secrets in every record that passes through."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self._redactor = Redactor()
        self._lock = threading.Lock()

    def protect(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = [*self._secrets, *secrets]
            self._redactor = Redactor(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor
        if redactor:
            record.msg = redactor.redact(record.getMessage())
            record.args = None
        return True


REDACT = RedactingFilter()


def protect(secrets: Iterable[str]) -> None:
    """Mask these values in every log line from now on."""
    REDACT.protect(secrets)


def configure(level: str, log_file: Path | None, console: Console | None) -> None:
    """Log to the console (rich, above a live display) or stderr, and optionally to a file."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level.upper())
    handlers: list[logging.Handler] = []
    if console is not None and console.is_terminal:
        from rich.logging import RichHandler

        handlers.append(RichHandler(console=console, show_path=False, rich_tracebacks=False))
    else:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(PLAIN_FORMAT))
        handlers.append(stream)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(REDACT)
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
