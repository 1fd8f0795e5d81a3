"""What people see: the status table and the live progress of a run (rich).

Rendering only: the figures come in as plain dicts from the caller (a
``snapshot`` function), so this module never touches the database or HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from resumer.crawler.estimate import Window, nodes, queried
from resumer.model import SHAPED, STATUSES, LiveFigures
from resumer.results import iso_utc

log = logging.getLogger(__name__)

LevelCounts = Mapping[int, Mapping[str, int]]
Snapshot = Callable[[], LevelCounts]

LIVE_REFRESH = 1.0  # seconds between two live redraws
LOG_EVERY = 10.0  # seconds between two progress lines when output is not a terminal
RATE_WINDOW = 30.0  # seconds of history behind the rate shown


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def status_table(info: Mapping[str, Any]) -> Group:
    """The ``resumer status`` view: the job's state and timings, then a table per level."""
    state = info["state"]
    style = {"complete": "green", "failed": "red", "running": "cyan"}.get(state, "yellow")
    header = Text.assemble(("state: ", "bold"), (state, style))
    if info.get("pid"):
        header.append(f" (process {info['pid']})")
    lines = [header]
    timing = f"started: {_when(info.get('started_at'))}"
    timing += f"   elapsed: {format_duration(info.get('elapsed_seconds') or 0)}"
    if info.get("finished_at"):
        timing += f"   finished: {_when(info['finished_at'])}"
    lines.append(Text(timing))
    if state == "running":
        rate = info.get("queries_per_second")
        pace = f"{rate:,.1f} queries/s over the last minute" if rate is not None else "pace: -"
        lines.append(Text(f"{pace}   retries: {info.get('retries', 0):,}"))
        eta = info.get("eta_seconds_estimate")
        remaining = info.get("remaining_queries_estimate", 0)
        left = format_duration(eta) if eta is not None else "unknown"
        lines.append(
            Text(
                f"ETA ~{left} for ~{remaining:,} queries left (an estimate: from the known "
                "frontier, the mean fan-out per level so far and the current rate)"
            )
        )
    if info.get("breaker"):
        health = health_text(info["breaker"], info.get("concurrency_limit"), info.get("send_rate"))
        if info.get("send_rate_reason"):
            health += f" ({info['send_rate_reason']})"
        lines.append(Text(health))
    if info.get("paused_until"):
        lines.append(Text(f"paused until {info['paused_until']}: the API asked (every call waits)"))
    if info.get("resume_after"):
        lines.append(
            Text(f"resume after {info['resume_after']}: the API asked to wait", style="yellow")
        )
    if info.get("failed"):
        lines.append(Text(f"failed: {info['failed']:,} (see: resumer failed)", style="red"))
    if info.get("source_error"):
        lines.append(Text(f"source failed: {info['source_error']}", style="red"))
    totals = info["totals"]
    # The rules' figures only when a rule shaped the tree: most jobs have none.
    columns = (*STATUSES, "total", *(f for f in SHAPED if totals.get(f)))
    table = Table(show_edge=False, header_style="bold")
    table.add_column("level", justify="right")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for level, counts in sorted(info["levels"].items(), key=lambda kv: int(kv[0])):
        table.add_row(str(level), *(f"{counts[c]:,}" for c in columns))
    table.add_row("all", *(f"{totals[c]:,}" for c in columns), style="bold")
    return Group(*lines, table)


def probe_table(report: Any) -> Table:
    """``resumer probe``: the calls that brought one level's items."""
    source = report.level == 1
    title = f"level {report.level}: {report.mapped} item(s) mapped " + (
        "from the source" if source else f"by querying level {report.level - 1}"
    )
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in ("request", "status", "ms", "items", "first items (id / name / type) or error"):
        table.add_column(name, overflow="fold")
    for call in report.calls:
        shown = "; ".join(_probed_item(i) for i in call.items[:3])
        leaves = sum(1 for i in call.items if i.leaf)
        dropped = sum(1 for i in call.items if i.drop)
        count = str(len(call.items))
        if leaves or dropped:
            count += f" ({leaves} leaf by rule, {dropped} dropped)"
        table.add_row(
            call.request,
            f"{call.status or '-'} ({call.decided})" if call.decided else str(call.status or "-"),
            f"{call.seconds * 1000:.0f}",
            count,
            Text(call.error, style="red") if call.error else Text(shown),
        )
    return table


def _probed_item(item: Any) -> str:
    """One item as probe shows it, with the rule that would make it a leaf or drop it."""
    text = f"{item.id} / {item.name} / {item.type}"
    if item.drop:
        return f"{text} [dropped: crawl.drop {item.drop}]"
    if item.leaf:
        return f"{text} [leaf: crawl.leaf {item.leaf}]"
    return text


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def health_text(breaker: str | None, limit: int | None, send_rate: float | None = None) -> str:
    """The policies' state in one line: breaker, in-flight limit, send rate."""
    pace = f"{send_rate:,.1f} calls/s" if send_rate is not None else "no limit"
    shown = limit if limit is not None else "?"
    return f"breaker {breaker or '?'}, in-flight limit {shown}, send rate {pace}"


def overall_text(figures: LiveFigures, elapsed: float) -> str:
    """The live view's overall line: queries done of the estimated total, elapsed, ETA
    (the estimate ``status`` gives), and how the run fares (send rate, in flight, breaker)."""
    total = max(figures.estimated_total, figures.done)
    share = f" ({figures.done / total:.0%})" if total else ""
    eta = format_duration(figures.eta) if figures.eta is not None else "unknown"
    pace = f"{figures.send_rate:,.1f} calls/s" if figures.send_rate is not None else "no limit"
    pacing = f"ETA ~{eta}   send rate {pace}"
    if figures.paused_until is not None:  # a quota closed: no rate, no pace to speak of
        pacing = f"paused until {iso_utc(figures.paused_until)} (the API asked)"
    return (
        f"queries {figures.done:,} of ~{round(total):,}{share}   elapsed {format_duration(elapsed)}"
        f"   {pacing}   in flight {figures.in_flight}/{figures.limit}   breaker {figures.breaker}"
    )


def failed_table(nodes: Iterable[Any]) -> Table:
    """``resumer failed``: one row per failed node."""
    table = Table(show_edge=False, header_style="bold")
    for name in ("level", "id", "name", "attempts", "last error"):
        table.add_column(name, overflow="fold")
    for node in nodes:
        table.add_row(str(node.level), node.id, node.name, str(node.attempts), node.error)
    return table


class _Rates:
    """Queries finished per second over a sliding window, per level."""

    def __init__(self) -> None:
        self._window = Window(RATE_WINDOW)

    def update(self, now: float, counts: LevelCounts) -> dict[int, float]:
        done = {level: queried(c) for level, c in counts.items()}
        rates = self._window.rates(now, done)
        return rates if rates is not None else dict.fromkeys(done, 0.0)


def progress_line(counts: LevelCounts, rates: Mapping[int, float], leaf_level: int) -> str:
    """The progress log line: each level's done/known, the queries' rate (the leaf
    level's stored nodes are not queries: left out) and the failed nodes."""
    parts = []
    for level in sorted(counts):
        c = counts[level]
        done, known = _done_of_known(c, level < leaf_level)
        parts.append(f"level {level} {done}/{known}")
    per_second = sum(rate for level, rate in rates.items() if level < leaf_level)
    failed = sum(c.get("failed", 0) for c in counts.values())
    return f"progress: {', '.join(parts)}; {per_second:.0f} queries/s; {failed} failed"


def _done_of_known(counts: Mapping[str, int], queried_level: bool) -> tuple[int, int]:
    """A level's progress: of a queried level, its queries done of those to make (a leaf
    by rule is never queried); of the leaf level, its nodes stored."""
    if queried_level:
        return queried(counts), nodes(counts) - counts.get("leaf_by_rule", 0)
    return counts.get("complete", 0), nodes(counts)


def progress_view(counts: LevelCounts, rates: Mapping[int, float], leaf_level: int) -> Table:
    table = Table(show_edge=False, header_style="bold", box=None)
    for name, justify in (("level", "right"), ("", "left"), ("done", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("rate", justify="right")
    table.add_column("failed", justify="right")
    for level in sorted(counts):
        c = counts[level]
        done, known = _done_of_known(c, level < leaf_level)
        rate = f"{rates.get(level, 0.0):,.0f}/s" if level < leaf_level else "leaves"
        failed = c.get("failed", 0)
        table.add_row(
            str(level),
            ProgressBar(total=max(known, 1), completed=done, width=30),
            f"{done:,}/{known:,}",
            rate,
            Text(f"{failed:,}", style="red" if failed else ""),
        )
    return table


class Progress:
    """Shows a run's progress until closed: a live table on a terminal, log lines otherwise.

    >>> with Progress(store.counts, leaf_level=4, console=Console()):  # doctest: +SKIP
    ...     runner.run()
    """

    def __init__(
        self,
        snapshot: Snapshot,
        leaf_level: int,
        console: Console,
        figures: Callable[[], LiveFigures] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snapshot = snapshot
        self.leaf_level = leaf_level
        self.console = console
        self.figures = figures
        self.clock = clock
        self._began = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._rates = _Rates()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            if self.console.is_terminal:
                self._live()
            else:
                self._log_lines()
        except Exception:  # the display must never bring a crawl down
            log.debug("progress display stopped", exc_info=True)

    def view(self) -> Table:
        """The live view now: a bar per level, and the overall line under them."""
        counts = self.snapshot()
        table = progress_view(counts, self._rates.update(self.clock(), counts), self.leaf_level)
        if self.figures is not None:
            table.caption = overall_text(self.figures(), self.clock() - self._began)
            table.caption_justify = "left"
        return table

    def _live(self) -> None:
        from rich.live import Live

        with Live(self.view(), console=self.console, auto_refresh=False) as live:
            while not self._stop.wait(LIVE_REFRESH):
                live.update(self.view(), refresh=True)
            live.update(self.view(), refresh=True)

    def _log_lines(self) -> None:
        self._rates.update(self.clock(), self.snapshot())  # so the first line has a rate
        while not self._stop.wait(LOG_EVERY):
            counts = self.snapshot()
            rates = self._rates.update(self.clock(), counts)
            health = ""
            if self.figures is not None:
                health = f"; {overall_text(self.figures(), self.clock() - self._began)}"
            log.info("%s%s", progress_line(counts, rates, self.leaf_level), health)


def diff_view(tallies: Iterable[Any], first: list[Any], differences: int) -> Group:
    """``resumer diff`` on a terminal: a table of the nodes each kind of change touched,
    per level, and the first changes."""
    table = Table(show_edge=False, header_style="bold")
    columns = ("added", "removed", "changed", "moved", "unchanged")
    table.add_column("level", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for tally in tallies:
        table.add_row(str(tally.level), *(f"{getattr(tally, c):,}" for c in columns))
    lines: list[Any] = [table]
    if not differences:
        lines.append(Text("no difference"))
        return Group(*lines)
    shown = f"the first {len(first)}" if len(first) < differences else "all"
    lines.append(Text(f"{differences:,} difference(s); {shown} (--json gives every one):"))
    for change in first:
        lines.append(Text(f"  {_change_line(change)}", style=_CHANGE_STYLES.get(change.change, "")))
    return Group(*lines)


_CHANGE_STYLES = {"added": "green", "removed": "red", "moved": "yellow"}


def _change_line(change: Any) -> str:
    """One change in a line: what, where, and for a change its fields before and after."""
    where = "/".join(change.path)
    head = f"{change.change:<10} level {change.level}  {where}"
    if change.change == "moved":
        head += f"  (from {'/'.join(change.moved_from)})"
    if change.change == "unfinished":
        return f"{head}  (not finished in {' and '.join(change.unfinished_in)})"
    shown = []
    for field in change.fields:
        before = _field_of(change.before, field)
        after = _field_of(change.after, field)
        shown.append(f"{field}: {before} -> {after}")
    return head + (f"  {'; '.join(shown)}" if shown else "")


def _field_of(state: Any, field: str) -> str:
    """A field's value on one side, short (``"name"``, ``"payload.price"``)."""
    if state is None:
        return "-"
    if field in ("name", "type"):
        value = getattr(state, field)
    elif field == "payload":
        value = state.payload
    else:
        key = field.removeprefix("payload.")
        value = state.payload.get(key, "(absent)") if isinstance(state.payload, dict) else None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
