"""The command line's terminal: its two consoles and its one-line error.

Owns: stdout's and stderr's rich consoles (made on first use) and ``fail``, the
one way a command reports what is wrong and exits. Must not: decide anything
(the library does) or be imported by the library: only the CLI modules use it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NoReturn

import typer

from resumer.job.messages import one_line

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _console(stderr: bool) -> Console:
    """stdout's or stderr's console, made on first use: importing rich costs a command that
    prints only JSON (``status --json``) a noticeable share of its time. Everything it
    prints is shown as it is: an error, an id or a path may hold ``[auth]`` or
    ``:name:``, which rich's markup and emoji codes would otherwise eat."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


def out() -> Console:
    return _console(False)


def err() -> Console:
    return _console(True)


def fail(message: str, status: int) -> NoReturn:
    """``message`` on one line on stderr, then exit with ``status``."""
    err().print(f"resumer: error: {one_line(message)}")
    raise typer.Exit(status)
