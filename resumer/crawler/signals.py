"""Ctrl-C and SIGTERM during a run: the first asks the runner to stop, the second quits.

Owns: the process's SIGINT and SIGTERM handlers while a run is on (the CLI
installs them; a library caller need not).

Must not: do more in a handler than set a flag and write one line (a signal may
land anywhere in the main thread, even while it prints or holds a lock), or touch
the store: the runner checkpoints on its own once asked to stop.

Tested by tests/integration/test_signals.py.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Protocol

from resumer.errors import EXIT_STOPPED


class Stoppable(Protocol):
    def request_stop(self) -> None: ...


def install_signal_handlers(runner: Stoppable) -> None:
    """First SIGINT/SIGTERM: drain and stop. Second: exit at once with EXIT_STOPPED (130)."""
    count = 0

    def say(text: str) -> None:
        # os.write, not print: a signal may land while the main thread is printing.
        os.write(sys.stderr.fileno(), f"\n{text}\n".encode())

    def handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        if count == 1:
            say("stopping: letting queries in flight finish (Ctrl-C again to quit at once)")
            runner.request_stop()
        else:
            say("quitting at once; queries in flight will be made again on resume")
            os._exit(EXIT_STOPPED)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
