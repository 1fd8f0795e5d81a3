"""Conditions on a JSON document: the one implementation of the job file's condition
words (``field`` with ``in`` / ``not_in`` / ``missing``), for answer rules and for
the leaf and drop rules on items (``shape``).

Values compare as text (``mapping.as_text``: ``0`` matches ``0`` and ``"0"``, ``true``
matches ``true`` and ``"true"``), because APIs are inconsistent about it. A null
counts as absent. Compiled once from the settings (``Condition``), tested per answer:
the path split once, a value's text made only when a value set is asked.
"""

from __future__ import annotations

from typing import Any

from resumer.job.settings import Condition
from resumer.query.mapping import as_text

ABSENT: Any = object()  # what ``FieldTest.value`` gives for an absent (or null) field


class FieldTest:
    """A compiled ``Condition``.

    >>> test = FieldTest(Condition("code", "not_in", (0,)))
    >>> test.holds({"code": "0"}), test.holds({"code": 500}), test.holds({})
    (False, True, True)
    """

    __slots__ = ("field", "steps", "test", "texts")

    def __init__(self, condition: Condition) -> None:
        self.field = condition.field
        self.steps = tuple(condition.field.split("."))
        self.test = condition.test
        self.texts = frozenset(as_text(value) for value in condition.values)

    def holds(self, document: Any) -> bool:
        """Whether the condition holds of ``document`` (a decoded JSON body or item)."""
        return self.holds_for(self.value(document))

    def value(self, document: Any) -> Any:
        """The field's value in ``document``; ``ABSENT`` if it is absent or null."""
        value = document
        for step in self.steps:
            if isinstance(value, dict):
                value = value.get(step, ABSENT)
            elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
                value = value[int(step)]
            else:
                return ABSENT
            if value is ABSENT:
                return ABSENT
        return ABSENT if value is None else value

    def holds_for(self, value: Any) -> bool:
        """Whether the condition holds of the field's ``value`` (``ABSENT`` for none)."""
        if self.test == "missing":
            return value is ABSENT
        if self.test == "present":
            return value is not ABSENT
        found = value is not ABSENT and _text(value) in self.texts
        return found if self.test == "in" else not found


def _text(value: Any) -> str | None:
    """A scalar as ``as_text`` writes it (the common kinds without a JSON encoder); None
    for a table or a list, which is never one of the values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return as_text(value)
    return None
