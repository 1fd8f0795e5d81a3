"""The live tally of nodes per level and status, kept from what transactions moved.

Owns: ``Counts`` (the shape every count takes), ``Moves`` (what a transaction changed)
and ``Tally`` (counts kept in memory, safe to read from any thread).

No SQL here, nor any connection: ``resumer.checkpoint.transaction`` records the moves (and
writes them to the kept counts, in the same transaction); ``resumer.checkpoint.store`` keeps the
one live ``Tally`` and applies them to it once the transaction has committed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from resumer.model import COUNTED

Counts = dict[int, dict[str, int]]  # level -> each of model.COUNTED -> n
Moves = Counter[tuple[int, str]]  # (level, status) -> nodes gained (negative: lost)


class Tally:
    """Live node counts per level and status: one scan at the start, then kept up to date
    from what each committed transaction moved (``Transaction.moves``).

    Why: counting the table is a scan (a third of a second at a million nodes); the
    live display, the metrics and the run's outcome ask for the counts often.

    >>> tally = Tally({1: dict.fromkeys(COUNTED, 0)})
    >>> tally.apply(Counter({(1, "pending"): 2}))
    >>> tally.counts()[1]["pending"]
    2
    """

    def __init__(self, counts: Counts) -> None:
        self._counts = {level: dict(by_status) for level, by_status in counts.items()}
        self._lock = threading.Lock()

    def apply(self, moves: Moves) -> None:
        with self._lock:
            for (level, status), n in moves.items():
                if level > 0 and n:
                    by_status = self._counts.setdefault(level, dict.fromkeys(COUNTED, 0))
                    by_status[status] += n

    def counts(self) -> Counts:
        """A copy, in the shape of ``Store.counts``."""
        with self._lock:
            return {level: dict(self._counts[level]) for level in sorted(self._counts)}


def gather(rows: Iterable[tuple[int, str, int]]) -> Counts:
    """Counts from (level, status, n) rows; every status present, zeros included, and
    the figures counted beside them (``model.SHAPED``)."""
    counts: Counts = {}
    for level, status, n in rows:
        counts.setdefault(level, dict.fromkeys(COUNTED, 0))[status] = n
    return counts
