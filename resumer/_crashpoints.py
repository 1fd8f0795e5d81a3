"""Deliberate crashes at named moments, for crash tests only.

``RESUMER_CRASH_AT=after_http:7`` makes the process SIGKILL itself at the 7th
time it reaches ``hit("after_http")`` (after an HTTP answer, before storing
it). Unset, ``hit`` is a no-op costing one comparison.

Points: ``after_http`` (worker, answer received), ``after_save`` (results
committed), ``after_claim`` (nodes marked running, not yet queried), ``mid_insert``
(a statement of children inserted, the transaction storing them not committed).

``RESUMER_MAX_PAGES=150`` fills the disk on purpose: the checkpoint may grow to
150 pages, then SQLite refuses every write that needs one more with
``SQLITE_FULL``, exactly as on a full disk.

Tested by tests/integration/test_crash.py, tests/integration/test_disk_full.py and
tests/integration/test_upgrade.py.
"""

from __future__ import annotations

import os
import signal
import threading

ENV_VAR = "RESUMER_CRASH_AT"
MAX_PAGES_VAR = "RESUMER_MAX_PAGES"


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count or 1)


_target = _parse(os.environ.get(ENV_VAR))
_seen = 0
_lock = threading.Lock()


def hit(point: str) -> None:
    global _seen
    if _target is None or _target[0] != point:
        return
    with _lock:
        _seen += 1
        if _seen >= _target[1]:
            os.kill(os.getpid(), signal.SIGKILL)


def max_pages() -> int | None:
    """The pages the checkpoint may grow to (``RESUMER_MAX_PAGES``); None: no limit."""
    value = os.environ.get(MAX_PAGES_VAR)
    return int(value) if value else None
