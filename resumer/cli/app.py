"""The ``resumer`` command line: parse, call ``resumer.api``, print, exit.

Every ``ResumerError`` becomes one line on stderr and an exit status here, in
one place; a user's mistake never shows a traceback.

Tested by tests/integration/test_cli.py, tests/integration/test_bad_input.py,
tests/integration/test_status.py and tests/integration/test_signals.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from resumer import api
from resumer.cli.fake_api import fake_api
from resumer.cli.terminal import err, fail, out
from resumer.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    AuthError,
    CheckpointError,
    ConfigError,
    ResumerError,
)
from resumer.job.loader import load_job
from resumer.job.settings import Job
from resumer.ops import logs
from resumer.results import iso_utc

if TYPE_CHECKING:
    from resumer.results import HealthProbe, Outcome


DEFAULT_DB = Path("resumer.db")

app = typer.Typer(
    name="resumer",
    help="Crawl a tree of records behind an HTTP API, concurrently, politely and durably.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

# Paths are checked by the library (one line naming what is wrong), not by typer.
DbOption = Annotated[Path, typer.Option("--db", help="The checkpoint database.")]
LogLevel = Annotated[
    str,
    typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", case_sensitive=False),
]
LogFile = Annotated[
    Path | None,
    typer.Option("--log-file", help="Also write log lines to this file (rotated by size)."),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus metrics on this port (overrides metrics.port).",
        min=0,
    ),
]
LogFormat = Annotated[
    str, typer.Option("--log-format", help="text, json or ecs (one JSON object a line).")
]


@contextmanager
def _errors() -> Iterator[None]:
    """Map every ResumerError to one line and an exit status."""
    try:
        yield
    except (ConfigError, CheckpointError, AuthError) as exc:  # AuthError: a refused 401
        fail(str(exc), EXIT_USAGE)
    except ResumerError as exc:
        fail(str(exc), EXIT_FAILED)


def _logging(level: str, log_file: Path | None, log_format: str = "text") -> None:
    if level.upper() not in logs.LEVELS:
        fail(f"--log-level: expected one of {', '.join(logs.LEVELS)}, got {level!r}", EXIT_USAGE)
    if log_format not in logs.FORMATS:
        fail(
            f"--log-format: expected one of {', '.join(logs.FORMATS)}, got {log_format!r}",
            EXIT_USAGE,
        )
    try:
        logs.configure(level, log_file, out(), log_format)
    except OSError as exc:
        fail(f"--log-file: cannot write {log_file} ({exc.strerror})", EXIT_USAGE)


def _progress(snapshot: Callable[[], Any], leaf_level: int, health: HealthProbe) -> Any:
    from resumer.cli.display import Progress

    return Progress(snapshot, leaf_level, out(), health)


def _report(outcome: Outcome, db: Path) -> NoReturn:
    """Say how the run ended and exit with the contracted status."""
    if outcome.already_finished:
        if outcome.complete:
            out().print(f"this job is already complete; export it with: resumer export --db {db}")
        else:
            err().print(
                f"this job already finished with {outcome.failed} failed node(s); nothing left"
                f" to query. See why with: resumer failed --db {db}; query them again with:"
                f" resumer resume --db {db} --retry-failed"
            )
    elif outcome.stopped and outcome.resume_after is not None:
        err().print(
            f"the API asked to wait until {iso_utc(outcome.resume_after)}, longer than [rate]"
            " max_pause: stopped; everything is checkpointed and no node failed. Resume after"
            f" that time with: resumer resume --db {db}"
        )
    elif outcome.stopped:
        err().print(f"stopped; everything is checkpointed. Resume with: resumer resume --db {db}")
    elif outcome.source_error is not None:
        err().print(f"the level-1 list could not be loaded: {outcome.source_error}")
    elif outcome.complete:
        out().print(
            f"complete: every node is stored in {db}. Export with: resumer export --db {db}"
        )
    else:
        err().print(
            f"finished with {outcome.failed} failed node(s); see why with: resumer failed --db {db}"
            f" (or resumer export --db {db} --partial); once the cause is fixed: "
            f"resumer resume --db {db} --retry-failed"
        )
    raise typer.Exit(outcome.exit_status)


def _version(value: bool) -> None:
    if value:
        from resumer import __version__

        print(f"resumer {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Crawl a tree of records behind an HTTP API, concurrently, politely and durably."""


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("job.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented job file template: every section, with its defaults."""
    from resumer.job.schema import template

    if path.exists() and not force:
        fail(f"{path}: already exists; choose another path or add --force", EXIT_USAGE)
    try:
        path.write_text(template(), encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot write ({exc.strerror})", EXIT_USAGE)
    err().print(f"wrote {path}; edit [source] and [request], then: resumer start {path}")


@app.command()
def schema() -> None:
    """Print the job file's JSON Schema (for editors such as Taplo / Even Better TOML)."""
    from resumer.job.schema import json_schema_text

    sys.stdout.write(json_schema_text())


@app.command()
def dashboard() -> None:
    """Print a Grafana dashboard (JSON model) for resumer's metrics: import it as is."""
    from resumer.ops.monitoring import dashboard_json

    sys.stdout.write(dashboard_json())


@app.command("prometheus-rules")
def prometheus_rules() -> None:
    """Print Prometheus alerting rules (YAML) for resumer's metrics."""
    from resumer.ops.monitoring import rules_yaml

    sys.stdout.write(rules_yaml())


@app.command()
def probe(
    job_file: Annotated[Path, typer.Argument(help="The job file (TOML).")],
    per_level: Annotated[
        int, typer.Option("--per-level", help="Nodes queried per level.", min=1, max=100)
    ] = 3,
) -> None:
    """Try a job file: load the roots and query a few nodes per level; store nothing."""
    from resumer.cli.display import probe_table
    from resumer.crawler.probe import probe as run_probe

    with _errors():
        job = load_job(job_file)
        reports = run_probe(job, per_level)
    for report in reports:
        out().print(probe_table(report))
    for report in reports:
        if report.problem:
            fail(f"level {report.level}: {report.problem}", EXIT_FAILED)
    out().print(f"every level mapped items: {job_file} looks right")


@app.command()
def start(
    job_file: Annotated[
        Path | None, typer.Argument(help="The job file (TOML); none with --from.")
    ] = None,
    from_db: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Crawl again the job stored in this checkpoint, into a new one (no job file).",
            metavar="OLD.db",
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="The checkpoint database (default: resumer.db; with --from, OLD's name and"
            " the time, beside it).",
        ),
    ] = None,
    log_level: LogLevel = "INFO",
    log_file: LogFile = None,
    log_format: LogFormat = "text",
    metrics_port: MetricsPort = None,
) -> None:
    """Create the checkpoint, store the job file in it, and crawl until nothing is left."""
    if (job_file is None) == (from_db is None):
        given = "both" if job_file is not None else "neither"
        fail(f"start: give a job file or --from OLD.db, not {given}", EXIT_USAGE)
    _logging(log_level, log_file, log_format)
    with _errors():
        job: Path | Job
        if from_db is not None:
            job = api.job_in(from_db)
            db = db or next_checkpoint(from_db)
            err().print(f"crawling the job stored in {from_db} again, into {db}")
        else:
            assert job_file is not None
            job = job_file
        db = db or DEFAULT_DB
        outcome = api.run(
            job, db, progress=_progress, handle_signals=True, metrics_port=metrics_port
        )
    _report(outcome, db)


def next_checkpoint(old: Path, now: float | None = None) -> Path:
    """Where ``start --from OLD`` writes by default: beside OLD, its name (without an
    earlier time) and the time now, ``features-20261207-0300.db``; never a file there."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    stem = STAMPED.sub("", old.stem) or old.stem
    suffix = old.suffix or ".db"
    candidate, n = old.with_name(f"{stem}-{stamp}{suffix}"), 1
    while candidate.exists():
        n += 1
        candidate = old.with_name(f"{stem}-{stamp}-{n}{suffix}")
    return candidate


STAMPED = re.compile(r"-\d{8}-\d{6}(-\d+)?$")  # the time next_checkpoint put in a name


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier crawl's checkpoint.", metavar="OLD.db")],
    new: Annotated[Path, typer.Argument(help="The later crawl's checkpoint.", metavar="NEW.db")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line, a change each.")
    ] = False,
    level: Annotated[
        int | None, typer.Option("--level", help="Only the changes of this level.", min=1)
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="A payload field left out of the comparison, as payload.updatedAt (repeat it).",
            metavar="PATH",
        ),
    ] = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Compare crawls that are not finished.")
    ] = False,
) -> None:
    """What changed between two crawls: nodes added, removed, changed, moved.

    Exit 0: no difference; 1: differences; 2: an error."""
    from resumer.results import Change

    differences, first = 0, list[Change]()
    with (
        _errors(),
        api.comparing(old, new, level=level, ignore=ignore or (), partial=partial) as compared,
    ):
        for note in compared.notes:
            err().print(f"note: {note}")
        for difference in compared.diff.changes():
            differences += difference.change != "unfinished"
            if as_json:
                line = json.dumps(Change.of(difference).as_json(), ensure_ascii=False)
                sys.stdout.write(line + "\n")
            elif len(first) < FIRST_CHANGES:
                first.append(Change.of(difference))
        tallies = compared.diff.tallies()
    if not as_json:
        from resumer.cli.display import diff_view

        out().print(diff_view(tallies, first, differences))
    raise typer.Exit(EXIT_FAILED if differences else EXIT_OK)


FIRST_CHANGES = 20  # changes shown on a terminal (--json gives them all)


@app.command()
def resume(
    db: DbOption = DEFAULT_DB,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Put failed nodes back to pending first.")
    ] = False,
    log_level: LogLevel = "INFO",
    log_file: LogFile = None,
    log_format: LogFormat = "text",
    metrics_port: MetricsPort = None,
) -> None:
    """Continue the job stored in the checkpoint, exactly where it stopped."""
    _logging(log_level, log_file, log_format)
    with _errors():
        outcome = api.resume(
            db,
            progress=_progress,
            handle_signals=True,
            retry_failed=retry_failed,
            metrics_port=metrics_port,
        )
    _report(outcome, db)


@app.command()
def status(
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until the job stops (Ctrl-C to leave).")
    ] = False,
    every: Annotated[
        float, typer.Option("--every", help="Seconds between refreshes with --watch.", min=0.2)
    ] = 2.0,
) -> None:
    """Show the job's state, pace, ETA and node counts per level and status (read-only)."""
    with _errors():
        info = api.status(db).as_json()
    if as_json:
        print(json.dumps(info))
        return
    from resumer.cli.display import status_table

    if not watch:
        out().print(status_table(info))
        return
    from rich.live import Live

    with _errors(), Live(status_table(info), console=out(), auto_refresh=False) as live:
        try:
            while info["state"] == "running":
                time.sleep(every)
                info = api.status(db).as_json()
                live.update(status_table(info), refresh=True)
        except KeyboardInterrupt:
            pass


@app.command()
def failed(
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the failed nodes: level, id, name, attempts and the last error."""
    with _errors():
        nodes = list(api.failed(db))
    if as_json:
        print(json.dumps([node._asdict() for node in nodes], ensure_ascii=False))
        return
    if not nodes:
        out().print("no failed nodes")
        return
    from resumer.cli.display import failed_table

    out().print(failed_table(nodes))


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Copy the checkpoint (SQLite online backup: safe while the job runs)."""
    with _errors():
        api.backup(db, dest)
    err().print(f"backup of {db} written to {dest}")


@app.command()
def check(db: DbOption = DEFAULT_DB) -> None:
    """Check the checkpoint: SQLite's integrity and the tree's own invariants."""
    with _errors():
        problems = api.check(db)
    if not problems:
        out().print(f"{db}: ok (SQLite integrity and the checkpoint's invariants)")
        return
    for problem in problems:
        err().print(f"{db}: {problem}")
    raise typer.Exit(EXIT_FAILED)


@app.command()
def export(
    db: DbOption = DEFAULT_DB,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Every level-1 tree, finished or not, with errors.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="json (nested, the default), jsonl or csv.")
    ] = "json",
    level: Annotated[
        int | None, typer.Option("--level", help="jsonl/csv: this level only.", min=1)
    ] = None,
) -> None:
    """Write the crawled trees (streamed): nested JSON, or a node a row as JSON lines or CSV."""
    with _errors():
        if output is None:
            try:
                api.export_to(db, sys.stdout, partial=partial, fmt=fmt, level=level)
            except ConfigError as exc:
                # Its reader stopped reading (``| head``): nothing to say about it (``main``
                # drops what stdout still holds); the status says the output is not whole.
                if isinstance(exc.__cause__, BrokenPipeError):
                    raise typer.Exit(EXIT_USAGE) from None
                raise
            return
        written = api.export_file(db, output, partial=partial, fmt=fmt, level=level)
    what = "level-1 tree(s)" if fmt == "json" else "node(s)"
    err().print(f"wrote {written} {what} to {output}")


@app.command()
def demo(
    log_level: LogLevel = "WARNING",
) -> None:
    """Crawl a demo tree from the built-in fake API, end to end, in a temporary folder."""
    from resumer.cli.demo import run_demo

    _logging(log_level, None)
    with _errors():
        status_code = run_demo(out(), progress=_progress)
    raise typer.Exit(status_code)


app.command("fake-api")(fake_api)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place
        err().print("interrupted")
        sys.exit(EXIT_STOPPED)
    finally:
        _drop_unwritable_stdout()


def _drop_unwritable_stdout() -> None:
    """If stdout cannot take what is left in its buffer (a full disk, a closed pipe), the
    error was reported already: discard the rest instead of a second error at exit."""
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
