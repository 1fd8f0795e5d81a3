"""How values appear in messages: on one line, quoted, keys written as TOML writes
them in a dotted name, values described ("a string ("x")", "a number (3)").

Every ``ConfigError`` about a job file is worded with these, so a message stays
one line whatever the file holds. This module only formats text: it validates
nothing and raises nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML key that needs no quotes


def one_line(text: str) -> str:
    """Control characters and line separators escaped: a message is one line."""
    return "".join(repr(c)[1:-1] if breaks_line(c) else c for c in text)


def breaks_line(char: str) -> bool:
    """A control character or a line or paragraph separator."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def quoted(text: str) -> str:
    """``text`` in double quotes, control characters escaped (a message stays one line)."""
    return json.dumps(text, ensure_ascii=False)


def dotted_key(name: Any) -> str:
    """A key as TOML writes it in a dotted name: bare if it can be, else quoted."""
    text = str(name)
    return text if BARE_KEY.fullmatch(text) else quoted(text)


def got_of(value: Any) -> str:
    """What a message says was found instead: "got a string ("x")"."""
    return f"got {describe_value(value)}"


def describe_value(value: Any) -> str:
    """A value as a message names it: its kind, and itself when it is short."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({quoted(value)})" if len(value) <= 40 else "a string"
    if isinstance(value, int | float):
        return f"a number ({number_text(value)})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def number_text(value: float) -> str:
    """A number as a message shows it: an integer of many digits is not written out."""
    if isinstance(value, int) and abs(value) >= 10**18:
        if value.bit_length() > 14_000:  # past what Python converts to text by default
            return "an integer of thousands of digits"
        return f"an integer of {len(str(abs(value)))} digits"
    return str(value)


def line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line number of ``key`` in ``[section]`` (TOML gives none after parsing)."""
    header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    first = key.split(".")[0] if key else None
    assignment = re.compile(r"^\s*" + re.escape(first) + r"\s*=") if first else None
    inside = False
    section_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[", line):
            inside = bool(header.match(line))
            if inside and assignment is None:
                return number
            section_line = section_line or (number if inside else None)
            continue
        if inside and assignment is not None and assignment.match(line):
            return number
    return section_line  # a missing key: point at its section


def rule_line(text: str, number: int, table: str = "response.rule") -> int | None:
    """The line of the ``number``-th ``[[table]]`` header (from 1), or None (an inline
    array, or fewer headers)."""
    header = re.compile(r"^\s*\[\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]\]")
    seen = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if header.match(line):
            seen += 1
            if seen == number:
                return line_number
    return None
