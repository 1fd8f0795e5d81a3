"""How much work is left: an estimate from the known frontier and the fan-out so far.

Pure arithmetic on the counts per level and status, so ``status`` can say how
many queries remain and, with the current rate, about when the job will end.
It is an estimate: the API may have more (or fewer) children below the
frontier than the levels above suggest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from resumer.model import STATUSES

Levels = Mapping[int, Mapping[str, int]]


def queried(counts: Mapping[str, int]) -> int:
    """Nodes of a level whose query is finished (whatever became of their subtree); a
    leaf by rule is complete but never queried."""
    finished = counts.get("waiting", 0) + counts.get("complete", 0) + counts.get("failed", 0)
    return finished - counts.get("leaf_by_rule", 0)


def queries_done(levels: Levels, max_depth: int) -> int:
    """Queries finished so far: the queried levels' nodes whose query is done."""
    return sum(queried(levels.get(level, {})) for level in range(1, max_depth))


def remaining_queries(levels: Levels, max_depth: int) -> float:
    """Queries still to make: the nodes not yet queried, plus the ones their subtrees
    are expected to bring (each level's mean fan-out so far, level by level, less the
    share of each level that leaf rules have made leaves so far)."""
    remaining = 0.0
    carried = 0.0  # nodes expected at this level from unqueried nodes above
    for level in range(1, max_depth):
        counts = levels.get(level, {})
        expected = carried * (1.0 - leaf_share(counts))
        unqueried = counts.get("pending", 0) + counts.get("running", 0) + expected
        remaining += unqueried
        carried = unqueried * fan_out(levels, level)
    return remaining


def fan_out(levels: Levels, level: int) -> float:
    """Mean children per queried node of ``level`` so far (0 when none is known)."""
    counts = levels.get(level, {})
    done = counts.get("waiting", 0) + counts.get("complete", 0) - counts.get("leaf_by_rule", 0)
    children = nodes(levels.get(level + 1, {}))
    return children / done if done > 0 else 0.0


def leaf_share(counts: Mapping[str, int]) -> float:
    """The share of a level's nodes that are leaves by rule (0 when none is known)."""
    known = nodes(counts)
    return counts.get("leaf_by_rule", 0) / known if known else 0.0


def nodes(counts: Mapping[str, int]) -> int:
    """A level's nodes, whatever their status (the items dropped are not nodes)."""
    return sum(counts.get(status, 0) for status in STATUSES)


def eta_seconds(remaining: float, rate: float | None) -> float | None:
    """Seconds left at ``rate`` queries a second; None when there is no rate to go by."""
    if remaining <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return remaining / rate


class Window:
    """Counters' rates over a sliding window: each one's gain since the oldest sample
    taken within the last ``seconds`` (at least two samples are kept), a second.

    >>> window = Window(60.0)
    >>> window.rates(0.0, {1: 0}), window.rates(2.0, {1: 10})
    (None, {1: 5.0})
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._samples: deque[tuple[float, Mapping[int, int]]] = deque()

    def rates(self, now: float, counts: Mapping[int, int]) -> dict[int, float] | None:
        """Add a sample; the rates since the oldest kept (None when no time has passed)."""
        self._samples.append((now, dict(counts)))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.seconds:
            self._samples.popleft()
        then, before = self._samples[0]
        if now <= then:
            return None
        return {key: (n - before.get(key, 0)) / (now - then) for key, n in counts.items()}
