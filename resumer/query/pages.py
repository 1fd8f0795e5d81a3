"""Where the next page of one node's children is: ``[response.pagination]``'s modes.

A ``Pager`` follows one query's pages: it says what the next call adds (a page
number, a cursor, an offset and a limit) or which URL it goes to (the
``Link: <...>; rel="next"`` header, RFC 8288, or a URL in the body), and, from
each answer, whether there is a next page. A next page that was already
fetched, or one on another server, is a ``QueryError``: a loop would never
end, and the request's headers (credentials included) must not go elsewhere.
So is a full page of two items or more, numbered or by offset, that holds the
very items of the one before it: the API ignores the parameter, or answers
past its end with its last page again, and counting on would never meet the
short page that ends.

This module makes no HTTP call: ``client.Client`` sends what the pager says.

>>> from resumer.query.mapping import lookup
>>> pager = Pager(Pagination("page", "page", 1, "size", 2, "next", "cursor"), str, lookup)
>>> pager.extra()
{'size': 2, 'page': 1}
>>> pager.advance({"items": [1, 2]}, None, found=[1, 2], url="http://h/c?page=1")
True
>>> pager.extra()
{'size': 2, 'page': 2}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx

from resumer.errors import QueryError
from resumer.job.settings import Pagination


class Pager:
    """The pages of one query, in order, by one mode (``Pagination.mode``).

    ``redact`` masks secrets in the URLs an error message quotes; ``lookup`` reads a
    dotted path in a body (``mapping.lookup``: ``KeyError`` for a missing step).
    """

    def __init__(
        self,
        pages: Pagination,
        redact: Callable[[str], str],
        lookup: Callable[[Any, str], Any],
    ) -> None:
        self.pages = pages
        self._lookup = lookup
        self.next_url: str | None = None  # link and next_url modes: where the next call goes
        self._redact = redact
        self._page = pages.start
        self._offset = 0
        self._cursor: str | int | None = None
        self._seen: set[Any] = set()
        self._last: Sequence[Any] = ()  # page and offset modes: the items of the page before

    def extra(self) -> dict[str, Any]:
        """The parameters the next call adds to the request's (query string, or POST body)."""
        pages = self.pages
        if pages.mode == "offset":
            return {pages.limit_param: pages.limit, pages.offset_param: self._offset}
        if pages.mode in ("link", "next_url"):
            return {}  # the first page is the request as configured; then the given URLs
        extra: dict[str, Any] = {pages.size_param: pages.size} if pages.size_param else {}
        if pages.mode == "page":
            extra[pages.page_param] = self._page
        elif self._cursor is not None:
            extra[pages.cursor_param] = self._cursor
        return extra

    def advance(
        self, document: Any, response: httpx.Response | None, *, found: Sequence[Any], url: str
    ) -> bool:
        """Take in the answer to ``url`` (the items ``found`` in it); True if there is a next
        page."""
        mode = self.pages.mode
        if mode == "page":
            self._repeated(found, url, f"page_param {self.pages.page_param!r}")
            self._page += 1
            return len(found) >= self.pages.size  # an empty or short page is the last
        if mode == "offset":
            self._repeated(found, url, f"offset_param {self.pages.offset_param!r}")
            self._offset += len(found)
            return len(found) >= self.pages.limit
        if mode == "cursor":
            return self._next_cursor(document, url)
        self._seen.add(url)  # the first page's URL too: a link back to it is a loop
        if mode == "link":
            link = response.links.get("next", {}).get("url") if response is not None else None
            return self._follow(link, response, url, 'the Link header\'s rel="next"')
        try:
            given = self._lookup(document, self.pages.next_url_path)
        except KeyError:
            given = None
        if given is not None and not isinstance(given, str):
            raise QueryError(
                f"pagination: next_url_path {self.pages.next_url_path!r} holds "
                f"{type(given).__name__} {given!r}, not a URL (GET {self._redact(url)})",
                transient=False,
            )
        return self._follow(given, response, url, f"next_url_path {self.pages.next_url_path!r}")

    def _repeated(self, found: Sequence[Any], url: str, param: str) -> None:
        """A ``QueryError`` if ``found`` holds the items of the page before, not new ones
        (two items at least: one item like the one before may be a sibling just like it)."""
        if len(found) > 1 and found == self._last:
            raise QueryError(
                f"pagination: {self._redact(url)} answered the {len(found)} items of the page"
                f" before again: the API ignores {param}, or answers past its last page with"
                ' that page (when the body says which page comes next, use mode = "cursor"'
                " with its cursor_path)",
                transient=False,
            )
        self._last = found

    def _next_cursor(self, document: Any, url: str) -> bool:
        path = self.pages.cursor_path
        try:
            cursor = self._lookup(document, path)
        except KeyError:
            cursor = None
        if cursor is None or cursor == "":
            return False
        if not isinstance(cursor, str | int) or cursor in self._seen:
            raise QueryError(
                f"pagination cursor {cursor!r} at {path!r} is repeated or "
                f"not a string (GET {self._redact(url)})",
                transient=False,
            )
        self._seen.add(cursor)
        self._cursor = cursor
        return True

    def _follow(
        self, link: str | None, response: httpx.Response | None, url: str, where: str
    ) -> bool:
        """Go on to ``link`` (relative to the answer's URL), or stop when there is none."""
        if not link:
            return False
        base = response.url if response is not None else httpx.URL(url)
        try:
            target = base.join(link)
        except httpx.InvalidURL as exc:
            raise QueryError(
                f"pagination: {where} is not a URL ({exc}): {self._redact(link)!r}",
                transient=False,
            ) from None
        shown = self._redact(str(target))
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise QueryError(
                f"pagination: the next page {shown} ({where}) is on another server than "
                f"{self._redact(str(base))}: not followed (the request's headers would go there)",
                transient=False,
            )
        if str(target) in self._seen:
            raise QueryError(
                f"pagination: the next page {shown} ({where}) was fetched already: "
                "the pages go round in a loop",
                transient=False,
            )
        self.next_url = str(target)
        return True
