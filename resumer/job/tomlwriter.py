"""Job settings written as TOML text: what ``loader.job_from_dict`` validates and the
checkpoint stores, and the defaults ``schema.template`` shows.

A value TOML cannot hold is a ``ConfigError`` naming its key. This module only
writes; reading and validating a job file is ``loader``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resumer.errors import ConfigError
from resumer.job.messages import BARE_KEY, describe_value, dotted_key


def to_toml(settings: Mapping[str, Any]) -> str:
    """TOML text for a job's tables (what the checkpoint stores, to resume from).

    Each top-level table is a section; tables inside one (``levels.N``,
    ``pagination``, ``params``, ...) are written inline, which TOML reads alike.
    A value TOML cannot hold is a ``ConfigError`` naming its key.
    """
    scalars = [
        f"{_toml_key(k)} = {toml_value(v, dotted_key(k))}"
        for k, v in settings.items()
        if not isinstance(v, Mapping)
    ]
    sections: list[str] = []
    for name, value in settings.items():
        if isinstance(value, Mapping):
            sections.append(f"[{_toml_key(name)}]")
            sections += [
                f"{_toml_key(k)} = {toml_value(v, f'{dotted_key(name)}.{dotted_key(k)}')}"
                for k, v in value.items()
            ]
    return "\n".join([*scalars, *sections]) + "\n"


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if BARE_KEY.fullmatch(text) else _toml_string(text, text)


def toml_value(value: Any, where: str) -> str:
    """``value`` as TOML text; ``where`` (its dotted key) names it in an error."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            return repr(value)
        except ValueError:  # more digits than Python writes out
            raise ConfigError(f"{where}: cannot write an integer this long in a job file") from None
    if isinstance(value, str):
        return _toml_string(value, where)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{_toml_key(k)} = {toml_value(v, f'{where}.{dotted_key(k)}')}"
            for k, v in value.items()
        )
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v, f"{where}[]") for v in value) + "]"
    raise ConfigError(f"{where}: cannot write {describe_value(value)} in a job file")


def _toml_string(text: str, where: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where}: a string with a lone surrogate is not text") from None
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
