"""Logging setup: where lines go, their format, their context, and masking of secrets.

Every handler carries ``REDACT``, a filter that masks the values of the job's
``${VAR}``s in each formatted line, so no secret reaches a log whatever code
logged it (``protect`` registers the values once they are read), and
``CONTEXT``, which stamps each record with the job and, when the code that
logged passed them (``extra=node_context(level, id)``), the tree level and node.
Lines are text (``PLAIN_FORMAT``) or one JSON object each: our own fields
(``JsonFormatter``) or the Elastic Common Schema's (``EcsFormatter``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from resumer.job.template import Redactor

if TYPE_CHECKING:  # rich is the CLI's: a library user's import never loads it
    from rich.console import Console

PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(job)s%(where)s] %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json", "ecs")
ECS_VERSION = "8.11.0"  # the Elastic Common Schema the ecs lines follow
LOG_FILE_BYTES = 10 * 1024 * 1024  # a log file rotates past this size ...
LOG_FILE_KEEP = 5  # ... keeping this many old ones (run.log.1 ... run.log.5)


def node_context(level: int | None, node: str | None) -> dict[str, object]:
    """``extra=`` for a log call about one node."""
    return {"tree_level": level, "node": node}


class ContextFilter(logging.Filter):
    """Stamps every record with the job it belongs to, and a tree level and node if given."""

    def __init__(self) -> None:
        super().__init__()
        self.job = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.job = self.job
        level = getattr(record, "tree_level", None)
        node = getattr(record, "node", None)
        record.tree_level, record.node = level, node
        record.where = "".join(
            [f" level {level}" if level is not None else "", f" {node}" if node else ""]
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, severity, job, level, node, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "job": getattr(record, "job", None),
            "level": getattr(record, "tree_level", None),
            "node": getattr(record, "node", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


class EcsFormatter(logging.Formatter):
    """One ECS 8 JSON object a line, as Filebeat and Elasticsearch expect them: dotted
    field names (``expand_keys`` makes objects of them), the job, tree level and node as
    ``labels.*`` (strings, as ECS labels are), the error as ``error.*``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        document: dict[str, object] = {
            "@timestamp": stamp.replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
            "log.logger": record.name,
            "service.name": "resumer",
            "process.pid": record.process,
            "process.thread.name": record.threadName,
        }
        labels = {
            "labels.job": getattr(record, "job", None),
            "labels.level": getattr(record, "tree_level", None),
            "labels.node": getattr(record, "node", None),
        }
        document.update({k: str(v) for k, v in labels.items() if v not in (None, "-")})
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            document["error.type"] = type(error).__qualname__
            document["error.message"] = REDACT.mask(str(error))
            document["error.stack_trace"] = REDACT.mask(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False)


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

    def mask(self, text: str) -> str:
        """``text`` with the registered secrets masked (for what a formatter adds)."""
        redactor = self._redactor
        return redactor.redact(text) if redactor else text

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor
        if redactor:
            record.msg = redactor.redact(record.getMessage())
            record.args = None
        return True


REDACT = RedactingFilter()
CONTEXT = ContextFilter()


GUARDED = ("resumer", "httpx", "httpcore")  # loggers whose records may quote a secret
_GUARDED_CHILDREN = tuple(f"{name}." for name in GUARDED)


def protect(secrets: Iterable[str]) -> None:
    """Mask these values in every log line from now on: through our handlers
    (``configure``), and through a library user's own, since the filter also sits on
    every logger of resumer's (and httpx's, which logs URLs) that exists by then."""
    REDACT.protect(secrets)
    names = [*GUARDED, *list(logging.Logger.manager.loggerDict)]
    for name in names:
        if name in GUARDED or name.startswith(_GUARDED_CHILDREN):
            logging.getLogger(name).addFilter(REDACT)  # once: addFilter skips a repeat


def set_job(name: str) -> None:
    """Name the job that every log line from now on belongs to."""
    CONTEXT.job = name


class LogFile(RotatingFileHandler):
    """The log file: a line that cannot be written (a full disk) is lost with one warning
    on stderr for each run of failures, never a traceback a line, never the crawl's end."""

    failing = False  # the last line could not be written
    _failed = False  # the line being written could not be

    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        super().emit(record)  # calls handleError if the write fails
        self.failing = self._failed

    def close(self) -> None:
        with contextlib.suppress(OSError):  # those lines are lost, as the warning said
            super().close()  # flushes what is buffered

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed = True
        if self.failing:
            return
        error = sys.exc_info()[1]
        why = error.strerror if isinstance(error, OSError) else error
        sys.stderr.write(
            f"resumer: warning: cannot write the log file {self.baseFilename} ({why});"
            " its lines are lost until it can be written again\n"
        )


def configure(
    level: str, log_file: Path | None, console: Console | None, log_format: str = "text"
) -> None:
    """Log to the console (rich, above a live display) or stderr, and optionally to a file
    that rotates by size; ``log_format`` is text, json or ecs (JSON is never rich)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level.upper())
    formatters = {"json": JsonFormatter, "ecs": EcsFormatter}
    formatter = formatters.get(log_format, lambda: logging.Formatter(PLAIN_FORMAT))()
    handlers: list[logging.Handler] = []
    if console is not None and console.is_terminal and log_format == "text":
        from rich.logging import RichHandler

        rich = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        rich.setFormatter(logging.Formatter("[%(job)s%(where)s] %(message)s"))
        handlers.append(rich)
    else:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        handlers.append(stream)
    if log_file is not None:
        file_handler = LogFile(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_KEEP, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(CONTEXT)
        handler.addFilter(REDACT)
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
