"""A catalogue of bad inputs, each through the real `resumer` command as a subprocess.

Every case must give exit status 2 and exactly one line on stderr naming the key, the
file or the path; never a traceback, never a hang; and nothing created or changed in
its folder (no database for a refused job file; a refused database byte for byte the
same, with no -wal, -shm or lock file left beside it).

The subprocesses are many, so they run a few at a time in one module fixture, each
with a short timeout; each case is then checked as a test of its own. None needs an
HTTP server: every check happens before a first call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from resumer.checkpoint.store import Store
from resumer.model import Item
from tests.helpers import cli_env

CASE_TIMEOUT = 30.0  # seconds for one command; a hang fails its case, not the run
PARALLEL = max(2, os.cpu_count() or 2)  # commands at once (each is mostly CPU: imports)
UNSET = "RESUMER_TEST_NEVER_SET"  # an environment variable no case defines
SECRET = "s3cret-value-7"  # a value from the environment that must never be shown

JOB = """\
[source]
file = "roots.csv"
[request]
url = "http://127.0.0.1:9/children"
{request}
[crawl]
max_depth = 2
{extra}
"""

Setup = Callable[[Path], object]
RULE_OK = '[[response.rule]]\nstatus = [404]\nthen = "empty"\n'  # a valid rule before a bad one


def job(request: str = "", extra: str = "") -> Setup:
    """A job file (with its roots.csv) that is valid but for ``request`` / ``extra``."""

    def write(folder: Path) -> None:
        (folder / "roots.csv").write_text("id,name,type\nA,alpha,t\n", encoding="utf-8")
        (folder / "job.toml").write_text(JOB.format(request=request, extra=extra), "utf-8")

    return write


def raw_job(text: str | bytes, *, roots: bool = True) -> Setup:
    """A job file of exactly ``text``."""

    def write(folder: Path) -> None:
        if roots:
            (folder / "roots.csv").write_text("id,name,type\nA,alpha,t\n", encoding="utf-8")
        data = text if isinstance(text, bytes) else text.encode()
        (folder / "job.toml").write_bytes(data)

    return write


def source_url(url: str) -> Setup:
    return raw_job(f'[source]\nurl = "{url}"\n[request]\nurl = "http://127.0.0.1:9/c"\n')


def with_source(name: str, content: str | None) -> Setup:
    """A valid job reading its roots from ``name``: ``content`` None means a folder."""

    def write(folder: Path) -> None:
        job_text = JOB.format(request="", extra="").replace("roots.csv", name)
        (folder / "job.toml").write_text(job_text, encoding="utf-8")
        if content is None:
            (folder / name).mkdir()
        elif content == "<fifo>":
            os.mkfifo(folder / name)
        else:
            (folder / name).write_text(content, encoding="utf-8")

    return write


def checkpoint(
    name: str = "r.db", *, finished: bool = True, request: str = "", roots: int = 3, size: int = 20
) -> Setup:
    """A real checkpoint made with the library: its level-1 list stored (``finished``:
    the job is complete), or not yet loaded (the job has work left)."""

    def make(folder: Path) -> None:
        (folder / "roots.csv").write_text("id,name,type\nA,alpha,t\n", encoding="utf-8")
        text = JOB.format(request=request, extra="")
        store = Store.create(folder / name, text, "job.toml", str(folder))
        try:
            if finished:
                (source,) = store.claim(0, 1)
                items = [
                    Item(f"R{n}", f"root {n}", "t", json.dumps({"id": f"R{n}", "x": "y" * size}))
                    for n in range(roots)
                ]
                with store.transaction() as tx:
                    tx.save_source(source.node, items, 1, leaf_level=1)
        finally:
            store.close()

    return make


def foreign_sqlite(name: str, *, wal: bool = False) -> Setup:
    """A SQLite database of another program (one table of its own)."""

    def make(folder: Path) -> None:
        with sqlite3.connect(folder / name) as db:
            if wal:
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            db.execute("INSERT INTO invoices (total) VALUES (12.5)")
        db.close()

    return make


def text_file(name: str, text: str = "shopping list: milk, eggs\n" * 20) -> Setup:
    return lambda folder: (folder / name).write_text(text, encoding="utf-8")


def folder_named(name: str) -> Setup:
    return lambda folder: (folder / name).mkdir()


def fifo(name: str) -> Setup:
    return lambda folder: os.mkfifo(folder / name)


def truncated(name: str = "r.db") -> Setup:
    def make(folder: Path) -> None:
        checkpoint(name, roots=400, size=200)(folder)
        db = folder / name
        with db.open("r+b") as handle:
            handle.truncate(db.stat().st_size // 2)

    return make


def newer(name: str = "r.db") -> Setup:
    def make(folder: Path) -> None:
        checkpoint(name)(folder)
        with sqlite3.connect(folder / name) as db:
            db.execute("UPDATE alembic_version SET version_num = '9999'")
        db.close()

    return make


def unwritable(relative: str) -> Setup:
    """Make ``relative`` (made by earlier steps) unwritable, even for root."""
    return lambda folder: make_unwritable(folder / relative)


def steps(*setups: Setup) -> Setup:
    def run(folder: Path) -> None:
        for setup in setups:
            setup(folder)

    return run


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    names: tuple[str, ...]  # what the one line on stderr must contain
    setup: Setup = lambda folder: None
    env: Mapping[str, str] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()  # what must appear nowhere in the output
    max_file_size: int | None = None  # RLIMIT_FSIZE for the command, in bytes
    stdout_path: str | None = None  # the command's stdout goes to this file


START = ("start", "job.toml", "--db", "r.db")
BIG = 2_000  # roots in the checkpoint whose export outgrows MAX_FILE_SIZE
MAX_FILE_SIZE = 60_000  # bytes: room for SQLite's -shm (32 KiB), not for the export

CASES = [
    # -- the job file ---------------------------------------------------------
    Case("toml-syntax", START, ("job.toml", "not valid TOML"), raw_job("[source\n")),
    Case(
        "toml-nested-too-deep",
        START,
        ("job.toml", "nested too deeply"),
        raw_job("a = " + "[" * 5000 + "]" * 5000 + "\n"),
    ),
    Case("job-not-utf8", START, ("job.toml", "not UTF-8"), raw_job(b"[source]\nfile = '\xff'\n")),
    Case("job-missing", ("start", "nope.toml", "--db", "r.db"), ("nope.toml", "no such job file")),
    Case(
        "job-is-a-folder",
        ("start", "jobs", "--db", "r.db"),
        ("jobs", "is a folder"),
        folder_named("jobs"),
    ),
    Case("job-is-a-fifo", START, ("job.toml", "request.url"), fifo("job.toml")),
    Case("unknown-key", START, ("job.toml:", "crawl.speed", "unknown key"), job(extra="speed = 3")),
    Case(
        "unknown-section",
        START,
        ("job.toml:", "unknown section [crawler]"),
        job(extra="[crawler]\nmax_depth = 3"),
    ),
    Case(
        "key-with-a-line-break",
        START,
        ("job.toml:", r'crawl."a\nb"', "unknown key"),
        job(extra='"a\\nb" = 1'),
    ),
    Case(
        "rule-unknown-then",
        START,
        ("job.toml:", "response.rule 2: then", '"fial"'),
        job(extra=RULE_OK + '[[response.rule]]\nfield = "code"\nin = [1]\nthen = "fial"'),
    ),
    Case(
        "rule-without-condition",
        START,
        ("job.toml:", "response.rule 1", "no condition"),
        job(extra='[[response.rule]]\nthen = "fail"'),
    ),
    Case(
        "rule-in-and-not-in",
        START,
        ("job.toml:", "response.rule 1", "in and not_in together"),
        job(extra='[[response.rule]]\nfield = "code"\nin = [1]\nnot_in = [2]\nthen = "fail"'),
    ),
    Case(
        "rule-wait-with-fail",
        START,
        ("job.toml:", "response.rule 1: wait", 'not "fail"'),
        job(extra='[[response.rule]]\nstatus = [200]\nthen = "fail"\nwait = "data.wait"'),
    ),
    Case(
        "rule-field-not-a-path",
        START,
        ("job.toml:", "response.rule 1: field", "dotted path"),
        job(extra='[[response.rule]]\nfield = "data..code"\nmissing = true\nthen = "empty"'),
    ),
    Case(
        "leaf-rule-without-a-test",
        START,
        ("job.toml:", "crawl.leaf 1: field", "needs one of in, not_in or missing"),
        job(extra='[[crawl.leaf]]\nfield = "hasChildren"'),
    ),
    Case(
        "leaf-rule-at-the-leaf-level",
        START,
        ("job.toml:", "crawl.leaf 1: level", "leaves already"),
        job(extra='[[crawl.leaf]]\nfield = "leaf"\nin = [true]\nlevel = [2]'),
    ),
    Case(
        "drop-rule-unknown-key",
        START,
        ("job.toml:", "crawl.drop 1: then", "unknown key"),
        job(extra='[[crawl.drop]]\nfield = "type"\nin = ["x"]\nthen = "drop"'),
    ),
    Case(
        "level-request-unknown-key",
        START,
        ("job.toml:", "levels.1.request.timeout", "a level may override"),
        job(extra="[levels.1.request]\ntimeout = 3"),
    ),
    Case(
        "level-response-of-a-level-not-queried",
        START,
        ("job.toml:", "[levels.2]", "not queried"),
        job(extra='[levels.2.response]\nitems = "data.children"'),
    ),
    Case(
        "level-response-rule-without-condition",
        START,
        ("job.toml:", "levels.1.response.rule 1", "no condition"),
        job(extra='[[levels.1.response.rule]]\nthen = "empty"'),
    ),
    Case(
        "max-body-not-a-size",
        START,
        ("job.toml:", "request.max_body", '"256MiB"', '"12 parsecs"'),
        job(request='max_body = "12 parsecs"'),
    ),
    Case(
        "level-max-body-zero",
        START,
        ("job.toml:", "levels.1.max_body", "up to 1 TiB", "got 0"),
        job(extra="[levels.1]\nmax_body = 0"),
    ),
    Case(
        "wrong-type",
        START,
        ("job.toml:", "crawl.max_depth", "expected an integer"),
        raw_job(JOB.format(request="", extra="").replace("max_depth = 2", 'max_depth = "two"')),
    ),
    Case(
        "string-with-a-line-break",
        START,
        ("job.toml:", "crawl.grace", r'"10\ns"'),
        job(extra='grace = "10\\ns"'),
    ),
    Case(
        "number-out-of-range",
        START,
        ("job.toml:", "crawl.http_concurrency", "from 1 to 1024"),
        job(extra="http_concurrency = 0"),
    ),
    Case(
        "negative-timeout",
        START,
        ("job.toml:", "request.timeout", "got -1.0"),
        job(request="timeout = -1"),
    ),
    Case("nan-timeout", START, ("job.toml:", "request.timeout"), job(request="timeout = nan")),
    Case(
        "duration-too-long",
        START,
        ("job.toml:", "backup.every"),
        job(extra='[backup]\nevery = "99999d"'),
    ),
    Case(
        "status-out-of-range",
        START,
        ("job.toml:", "retry.retry_on"),
        job(extra="[retry]\nretry_on = [99]"),
    ),
    Case(
        "level-not-queried",
        START,
        ("job.toml:", "[levels.5]", "not queried"),
        job(extra="[levels.5]\nworkers = 2"),
    ),
    Case(
        "missing-request-url",
        START,
        ("job.toml", "request.url", "missing"),
        raw_job('[source]\nfile = "roots.csv"\n[request]\nmethod = "GET"\n'),
    ),
    Case(
        "source-url-and-file",
        START,
        ("job.toml", "[source]", "both are set"),
        raw_job(
            '[source]\nfile = "r.csv"\nurl = "http://127.0.0.1:9/f"\n[request]\nurl = "http://127.0.0.1:9/c"\n'
        ),
    ),
    Case(
        "source-file-missing",
        START,
        ("roots.csv", "no such source file"),
        raw_job(JOB.format(request="", extra=""), roots=False),
    ),
    Case(
        "source-file-wrong-shape",
        START,
        ("roots.csv", "header row with id"),
        with_source("roots.csv", "name,type\nalpha,t\n"),
    ),
    Case(
        "source-json-not-an-array",
        START,
        ("roots.json", "expected a JSON array"),
        with_source("roots.json", '{"id": "A"}'),
    ),
    Case("source-file-is-a-folder", START, ("roots.csv", "folder"), with_source("roots.csv", None)),
    Case(
        "source-file-is-a-fifo",
        START,
        ("roots.csv", "not a regular file"),
        with_source("roots.csv", "<fifo>"),
    ),
    Case(
        "undefined-variable",
        START,
        ("job.toml", UNSET, "is not set"),
        job(request=f'headers = {{ Authorization = "Bearer ${{{UNSET}}}" }}'),
    ),
    # -- URLs -----------------------------------------------------------------
    Case(
        "url-port-not-a-number",
        START,
        ("job.toml:4:", "request.url", '"http://127.0.0.1:abc/children"', "port"),
        raw_job(JOB.format(request="", extra="").replace(":9/", ":abc/")),
    ),
    Case(
        "url-port-out-of-range",
        START,
        ("job.toml:4:", "request.url", "from 1 to 65535"),
        raw_job(JOB.format(request="", extra="").replace(":9/", ":70000/")),
    ),
    Case(
        "url-ftp",
        START,
        ("job.toml:4:", "request.url", '"ftp://x/c" must start with http:// or https://'),
        raw_job(
            JOB.format(request="", extra="").replace("http://127.0.0.1:9/children", "ftp://x/c")
        ),
    ),
    Case(
        "url-without-scheme",
        START,
        ("job.toml:4:", "request.url", "must start with http://"),
        raw_job(JOB.format(request="", extra="").replace("http://", "")),
    ),
    Case(
        "url-without-host",
        START,
        ("job.toml:4:", "request.url", "no host"),
        raw_job(JOB.format(request="", extra="").replace("127.0.0.1:9", "")),
    ),
    Case(
        "url-with-a-line-break",
        START,
        ("job.toml:4:", "request.url", "control character"),
        raw_job(JOB.format(request="", extra="").replace("/children", "/chil\\ndren")),
    ),
    Case(
        "url-from-the-environment",
        START,
        ("job.toml", "request.url", "${RESUMER_TEST_BASE}", "must start with http://"),
        raw_job(
            JOB.format(request="", extra="").replace("http://127.0.0.1:9", "${RESUMER_TEST_BASE}")
        ),
        env={"RESUMER_TEST_BASE": f"ftp://{SECRET}"},
        hidden=(SECRET,),
    ),
    Case(
        "source-url-ftp",
        START,
        ("job.toml:2:", "source.url", "must start"),
        source_url("ftp://x/f"),
    ),
    Case(
        "source-url-placeholder",
        START,
        ("job.toml:2:", "source.url", "{id} has no value here"),
        source_url("http://127.0.0.1:9/{id}"),
    ),
    Case(
        "webhook-not-http",
        START,
        ("job.toml", "alerts.webhook", "must start with http://"),
        job(extra='[alerts]\nerror_rate = 0.5\nwebhook = "mailto:ops@example.com"'),
    ),
    # -- headers ---------------------------------------------------------------
    Case(
        "header-name-with-a-space",
        START,
        ("job.toml:5:", 'request.headers."X Bad"', "not a valid header name"),
        job(request='headers = { "X Bad" = "1" }'),
    ),
    Case(
        "header-value-with-crlf",
        START,
        ("job.toml:5:", "request.headers.X-Note", "line break"),
        job(request='headers = { X-Note = "a\\r\\nInjected: 1" }'),
    ),
    Case(
        "header-value-with-nul",
        START,
        ("job.toml:5:", "request.headers.X-Note", "control character"),
        job(request='headers = { X-Note = "a\\u0000b" }'),
    ),
    Case(
        "header-value-from-the-environment",
        START,
        ("job.toml", "request.headers.Authorization", "${RESUMER_TEST_TOKEN}", "line break"),
        job(request='headers = { Authorization = "Bearer ${RESUMER_TEST_TOKEN}" }'),
        env={"RESUMER_TEST_TOKEN": f"{SECRET}\r\nX-Evil: 1"},
        hidden=(SECRET,),
    ),
    # -- --db ------------------------------------------------------------------
    Case(
        "start-db-in-a-missing-folder",
        ("start", "job.toml", "--db", "no/such/dir/x.db"),
        ("no/such/dir/x.db", "folder no/such/dir does not exist"),
        job(),
    ),
    Case(
        "start-db-is-a-folder",
        ("start", "job.toml", "--db", "dbs"),
        ("dbs", "is a folder"),
        steps(job(), folder_named("dbs")),
    ),
    Case(
        "start-db-is-a-text-file",
        ("start", "job.toml", "--db", "notes.txt"),
        ("notes.txt", "not a resumer database"),
        steps(job(), text_file("notes.txt")),
    ),
    Case(
        "start-db-is-another-programs-sqlite",
        ("start", "job.toml", "--db", "app.db"),
        ("app.db", "not a resumer database", "invoices"),
        steps(job(), foreign_sqlite("app.db", wal=True)),
    ),
    Case(
        "start-db-is-the-job-file",
        ("start", "job.toml", "--db", "job.toml"),
        ("job.toml", "not a resumer database"),
        job(),
    ),
    Case(
        "start-db-holds-a-job",
        START,
        ("r.db", "already holds a job"),
        steps(job(), checkpoint()),
    ),
    Case(
        "start-db-folder-not-writable",
        ("start", "job.toml", "--db", "locked/r.db"),
        ("locked/r.db", "not writable"),
        steps(job(), folder_named("locked"), unwritable("locked")),
    ),
    Case(
        "resume-db-in-a-missing-folder",
        ("resume", "--db", "no/such/dir/x.db"),
        ("no/such/dir/x.db", "does not exist"),
    ),
    Case("resume-db-is-missing", ("resume", "--db", "r.db"), ("r.db", "no such database")),
    Case(
        "resume-db-is-empty",
        ("resume", "--db", "empty.db"),
        ("empty.db", "holds no resumer job"),
        text_file("empty.db", ""),
    ),
    Case(
        "resume-db-is-a-text-file",
        ("resume", "--db", "notes.txt"),
        ("notes.txt", "not a resumer database"),
        text_file("notes.txt"),
    ),
    Case(
        "resume-db-is-another-programs-sqlite-wal",
        ("resume", "--db", "app.db"),
        ("app.db", "not a resumer database"),
        foreign_sqlite("app.db", wal=True),
    ),
    Case(
        "resume-db-is-truncated",
        ("resume", "--db", "r.db"),
        ("r.db", "truncated", "no backup found"),
        truncated(),
    ),
    Case(
        "resume-db-from-a-newer-resumer",
        ("resume", "--db", "r.db"),
        ("r.db", "newer resumer"),
        newer(),
    ),
    Case(
        "resume-db-is-a-fifo",
        ("resume", "--db", "r.db"),
        ("r.db", "not a regular file"),
        fifo("r.db"),
    ),
    Case(
        "resume-db-not-writable",
        ("resume", "--db", "r.db"),
        ("r.db", "not writable"),
        steps(checkpoint(finished=False), unwritable("r.db")),
    ),
    Case(
        "resume-lock-file-is-a-folder",
        ("resume", "--db", "r.db"),
        ("r.db", "lock file", "r.db.lock"),
        steps(checkpoint(finished=False), folder_named("r.db.lock")),
    ),
    Case(
        "resume-job-needs-an-undefined-variable",
        ("resume", "--db", "r.db"),
        ("job.toml", UNSET, "is not set"),
        checkpoint(finished=False, request=f'headers = {{ X = "${{{UNSET}}}" }}'),
    ),
    Case(
        "status-db-is-another-programs-sqlite",
        ("status", "--db", "app.db"),
        ("app.db", "not a resumer database"),
        foreign_sqlite("app.db"),
    ),
    Case(
        "status-db-is-a-folder",
        ("status", "--db", "dbs"),
        ("dbs", "is a folder"),
        folder_named("dbs"),
    ),
    Case(
        "export-db-is-another-programs-sqlite",
        ("export", "--db", "app.db"),
        ("app.db", "not a resumer database"),
        foreign_sqlite("app.db", wal=True),
    ),
    Case(
        "failed-db-is-a-text-file",
        ("failed", "--db", "notes.txt"),
        ("notes.txt", "not a resumer database"),
        text_file("notes.txt"),
    ),
    Case("check-db-is-truncated", ("check", "--db", "r.db"), ("r.db", "truncated"), truncated()),
    Case(
        "backup-db-is-another-programs-sqlite",
        ("backup", "copy.db", "--db", "app.db"),
        ("app.db", "not a resumer database"),
        foreign_sqlite("app.db"),
    ),
    # -- diff and start --from --------------------------------------------------
    Case(
        "diff-new-is-a-text-file",
        ("diff", "r.db", "notes.txt"),
        ("notes.txt", "not a resumer database"),
        steps(checkpoint("r.db"), text_file("notes.txt")),
    ),
    Case(
        "diff-old-is-missing",
        ("diff", "gone.db", "r.db"),
        ("gone.db", "no such database"),
        checkpoint("r.db"),
    ),
    Case(
        "diff-an-unfinished-crawl",
        ("diff", "r.db", "s.db"),
        ("s.db", "not complete", "--partial"),
        steps(checkpoint("r.db"), checkpoint("s.db", finished=False)),
    ),
    Case(
        "diff-ignore-outside-the-payload",
        ("diff", "r.db", "s.db", "--ignore", "name"),
        ("ignore", "'name'", "payload.updatedAt"),
        steps(checkpoint("r.db"), checkpoint("s.db")),
    ),
    Case(
        "start-from-a-missing-checkpoint",
        ("start", "--from", "gone.db", "--db", "new.db"),
        ("gone.db", "no such database"),
    ),
    Case(
        "start-from-another-programs-sqlite",
        ("start", "--from", "app.db", "--db", "new.db"),
        ("app.db", "not a resumer database"),
        foreign_sqlite("app.db"),
    ),
    Case(
        "start-with-a-job-file-and-from",
        ("start", "job.toml", "--from", "r.db"),
        ("job file or --from", "not both"),
        steps(job(), checkpoint("r.db")),
    ),
    # -- -o and the backup's destination ---------------------------------------
    Case(
        "export-into-a-missing-folder",
        ("export", "--db", "r.db", "-o", "no/such/dir/tree.json"),
        ("no/such/dir/tree.json", "does not exist"),
        checkpoint(),
    ),
    Case(
        "export-onto-a-folder",
        ("export", "--db", "r.db", "-o", "out"),
        ("out", "is a folder"),
        steps(checkpoint(), folder_named("out")),
    ),
    Case(
        "export-into-a-folder-not-writable",
        ("export", "--db", "r.db", "-o", "locked/tree.json"),
        ("locked/tree.json", "not writable"),
        steps(checkpoint(), folder_named("locked"), unwritable("locked")),
    ),
    Case(
        "export-onto-a-file-not-writable",
        ("export", "--db", "r.db", "-o", "tree.json"),
        ("tree.json", "not writable"),
        steps(checkpoint(), text_file("tree.json", "[]\n"), unwritable("tree.json")),
    ),
    Case(
        "export-onto-its-own-database",
        ("export", "--db", "r.db", "-o", "r.db"),
        ("r.db", "cannot overwrite the database"),
        checkpoint(),
    ),
    Case(
        "export-onto-a-full-disk",
        ("export", "--db", "r.db", "-o", "/dev/full"),
        ("/dev/full", "No space left"),
        checkpoint(roots=BIG),
    ),
    Case(
        "export-past-the-file-size-limit",
        ("export", "--db", "r.db", "-o", "tree.json"),
        ("tree.json", "cannot write the export"),
        checkpoint(roots=BIG),
        max_file_size=MAX_FILE_SIZE,
    ),
    Case(
        "export-to-a-full-stdout",
        ("export", "--db", "r.db"),
        ("cannot write the export",),
        checkpoint(roots=BIG),
        stdout_path="/dev/full",
    ),
    Case(
        "export-into-a-pipe-nobody-reads",
        ("export", "--db", "r.db", "-o", "pipe"),
        ("pipe", "no process reads from it"),
        steps(checkpoint(), fifo("pipe")),
    ),
    Case(
        "export-unknown-format",
        ("export", "--db", "r.db", "--format", "xml"),
        ("--format", "xml"),
        checkpoint(),
    ),
    Case(
        "backup-into-a-missing-folder",
        ("backup", "no/such/dir/copy.db", "--db", "r.db"),
        ("no/such/dir/copy.db", "does not exist"),
        checkpoint(),
    ),
    Case(
        "backup-onto-a-folder",
        ("backup", "out", "--db", "r.db"),
        ("out", "is a folder"),
        steps(checkpoint(), folder_named("out")),
    ),
    Case(
        "backup-onto-its-own-database",
        ("backup", "./r.db", "--db", "r.db"),
        ("r.db", "cannot overwrite the database"),
        checkpoint(),
    ),
    Case(
        "backup-onto-a-pipe",
        ("backup", "pipe", "--db", "r.db"),
        ("pipe", "not a regular file"),
        steps(checkpoint(), fifo("pipe")),
    ),
]


@dataclass(frozen=True)
class Ran:
    status: int | None  # None: it did not end within CASE_TIMEOUT
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's SHA-256, or what kind of entry it is."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
        else:
            found[path.relative_to(folder).as_posix()] = stat.filemode(mode)
    return found


_immutable: list[Path] = []


def make_unwritable(path: Path) -> None:
    """Permissions first; for root, whom they do not stop, the immutable attribute."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(path, os.W_OK) and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
        _immutable.append(path)
    if os.access(path, os.W_OK):
        raise RuntimeError(f"cannot make {path} unwritable here (root without chattr +i?)")


def command(case: Case) -> list[str]:
    if case.max_file_size is None:
        return [sys.executable, "-m", "resumer", *case.args]
    limit = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({case.max_file_size}, "
        f"{case.max_file_size})); "
        "os.execv(sys.executable, [sys.executable, '-m', 'resumer', *sys.argv[1:]])"
    )
    return [sys.executable, "-c", limit, *case.args]


def run(case: Case, folder: Path) -> Ran:
    before = snapshot(folder)
    env = {**cli_env(), **case.env}
    env.pop(UNSET, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with contextlib.ExitStack() as stack:
        stdout: Any = subprocess.PIPE
        if case.stdout_path:
            stdout = stack.enter_context(open(case.stdout_path, "w"))
        try:
            done = subprocess.run(
                command(case),
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                timeout=CASE_TIMEOUT,
            )
            status, out, err = done.returncode, done.stdout or "", done.stderr
        except subprocess.TimeoutExpired as hung:
            status, out, err = None, _text(hung.stdout), _text(hung.stderr)
    return Ran(status, out, err, before, snapshot(folder))


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Ran]]:
    root = tmp_path_factory.mktemp("bad-input")
    folders = {}
    for case in CASES:
        folders[case.id] = root / case.id
        folders[case.id].mkdir()
        case.setup(folders[case.id])
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            ran = pool.map(lambda case: (case.id, run(case, folders[case.id])), CASES)
            yield dict(ran)
    finally:
        for path in _immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)


def test_the_catalogue_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.timeout(600)  # the first case's setup runs the whole catalogue
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    outcomes: dict[str, Ran], case: Case
) -> None:
    ran = outcomes[case.id]
    assert ran.status is not None, f"hung for {CASE_TIMEOUT}s; stderr: {ran.stderr!r}"
    everything = ran.stdout + ran.stderr
    assert "Traceback" not in everything, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, ran.stderr
    (line,) = lines
    assert line.startswith("resumer: error: "), line
    for name in case.names:
        assert name in line, f"{name!r} not in {line!r}"
    assert ran.status == 2, line
    for secret in case.hidden:
        assert secret not in everything
    assert ran.after == ran.before, "the command created or changed files"
