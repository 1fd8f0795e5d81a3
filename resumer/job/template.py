"""Request templates: ``{id}``-style placeholders and ``${VAR}`` secrets.

A template string is compiled once into literal, placeholder and environment
parts, so rendering one request costs a join, and a value containing braces is
never re-interpreted. ``${VAR}`` parts are resolved once per run from the
environment (``bind_env``); their values are secrets: ``Redactor`` masks them
wherever text leaves the process (logs, stored errors).

This module knows nothing of HTTP or of the job file's layout.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from resumer.errors import TemplateError as TemplateError  # defined there; importable from here

PLACEHOLDERS = ("id", "name", "type", "level", "parent_id")

_TOKEN = re.compile(r"\{\{|\}\}|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\{([^{}]*)\}|[{}]")
_REDACTED = "***"


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: a tuple of ``(kind, text)`` parts.

    >>> t = Template.compile("/children/{id}")
    >>> t.render({"id": "A 1"}, quote_value=lambda v: v.replace(" ", "%20"))
    '/children/A%201'
    """

    parts: tuple[tuple[str, str], ...]

    @classmethod
    def compile(cls, text: str) -> Template:
        parts: list[tuple[str, str]] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            if match.start() > pos:
                parts.append(("lit", text[pos : match.start()]))
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append(("lit", token[0]))
            elif match.group(1) is not None:
                parts.append(("env", match.group(1)))
            elif match.group(2) is not None:
                name = match.group(2)
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    raise TemplateError(f"unknown placeholder {{{name}}} (known: {known})")
                parts.append(("var", name))
            else:
                raise TemplateError(f"unmatched {token!r} (write {token * 2} for a literal brace)")
            pos = match.end()
        if pos < len(text):
            parts.append(("lit", text[pos:]))
        return cls(_merge_literals(parts))

    @property
    def env_vars(self) -> tuple[str, ...]:
        return tuple(text for kind, text in self.parts if kind == "env")

    @property
    def is_literal(self) -> bool:
        return all(kind == "lit" for kind, _ in self.parts)

    def only_placeholder(self) -> str | None:
        """The placeholder name if the template is exactly one placeholder, else None."""
        if len(self.parts) == 1 and self.parts[0][0] == "var":
            return self.parts[0][1]
        return None

    def bind_env(self, env: Mapping[str, str]) -> Template:
        """Replace ``${VAR}`` parts by their values; every variable must be in ``env``."""
        parts = [("lit", env[text]) if kind == "env" else (kind, text) for kind, text in self.parts]
        return Template(_merge_literals(parts))

    def render(
        self, values: Mapping[str, str], quote_value: Callable[[str], str] | None = None
    ) -> str:
        if len(self.parts) == 1:  # a literal, or one placeholder (a param's usual value)
            kind, text = self.parts[0]
            if kind == "lit":
                return text
            if kind == "var":
                return quote_value(values[text]) if quote_value else values[text]
        out: list[str] = []
        for kind, text in self.parts:
            if kind == "var":
                value = values[text]
                out.append(quote_value(value) if quote_value else value)
            else:
                out.append(text)
        return "".join(out)


def _merge_literals(parts: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    merged: list[tuple[str, str]] = []
    for kind, text in parts:
        if kind == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + text)
        elif not (kind == "lit" and text == ""):
            merged.append((kind, text))
    return tuple(merged) or (("lit", ""),)


def quote_segment(value: str) -> str:
    """Percent-encode a value as one URL path segment (``/`` included): ``quote(value,
    safe="")`` to the character, by one translation of its UTF-8 bytes (a quarter of
    ``quote``'s time; it is done for every call)."""
    return value.encode().decode("latin-1").translate(_IN_PATH)


def quote_query(value: str) -> str:
    """Percent-encode a value for a query string: ``quote_plus(value, safe="")`` to the
    character (a space is ``+``), the same way as ``quote_segment``."""
    return value.encode().decode("latin-1").translate(_IN_QUERY)


def _percent_encoding(space: str) -> dict[int, str]:
    """A ``str.translate`` table from each byte (as a Latin-1 character) to its percent
    encoding; what ``urllib.parse.quote`` always leaves as it is stays so."""
    return {
        byte: chr(byte) if byte in _UNRESERVED else space if byte == 0x20 else f"%{byte:02X}"
        for byte in range(256)
    }


_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_IN_PATH = _percent_encoding("%20")
_IN_QUERY = _percent_encoding("+")


class Redactor:
    """Masks secret values (and their URL-encoded forms) in text.

    >>> Redactor(["s3cret!"]).redact("token=s3cret%21 and s3cret!")
    'token=*** and ***'
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (thread-safe: a token obtained mid-run
        joins the ``${VAR}`` values while other threads redact)."""
        with self._lock:
            forms = set(self._forms)
            for secret in secrets:
                if secret:
                    forms.update(
                        {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
                    )
            # Longest first, so a secret that contains another is masked whole. The list
            # is replaced, never changed in place: a redact under way keeps its own.
            self._forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def redact(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, _REDACTED)
        return text
