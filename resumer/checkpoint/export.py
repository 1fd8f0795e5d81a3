"""The export: the crawled trees, streamed, as nested JSON (the contract), JSON lines or CSV.

Depth-first, API order; the output for the same database is byte-identical
from run to run. Memory holds one node's children per level of depth, never
the tree; each level-1 tree is read in its own short read transaction, so a
long export never starves the checkpoint's WAL.

JSON lines and CSV give one node a row: ``level, id, name, type, parent_id,
path, payload``, where ``path`` is the ids from the root joined by ``/``, each
percent-encoded (so an id holding ``/`` stays one step).

``output_file`` is the file an export is written into: never seen half-written.
"""

from __future__ import annotations

import csv
import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TextIO
from urllib.parse import quote

from resumer.checkpoint.files import whole_or_nothing
from resumer.checkpoint.store import SOURCE_NODE, NodeRow, Reader, Store
from resumer.errors import ConfigError

FORMATS = ("json", "jsonl", "csv")
COLUMNS = ("level", "id", "name", "type", "parent_id", "path", "payload")

ROOTS_PAGE = 256  # level-1 nodes read per transaction


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


class FlatNode(NamedTuple):
    """One node as a row of the JSON-lines and CSV exports."""

    level: int
    id: str
    name: str
    type: str
    parent_id: str  # "" for a level-1 node
    path: str  # the ids from the root, each percent-encoded, joined by "/"
    payload: str  # the item's JSON text
    status: str = "complete"  # not a column of the row exports


def roots(store: Store, partial: bool) -> Iterator[NodeRow]:
    """Level-1 nodes in source order (only complete trees unless ``partial``), paged."""
    after = -1
    while True:
        with store.reading() as reader:
            roots = reader.children(SOURCE_NODE, after, ROOTS_PAGE)
        if not roots:
            return
        after = roots[-1].position
        yield from (root for root in roots if partial or root.status == "complete")


def write_export(store: Store, out: TextIO, *, partial: bool = False) -> int:
    """Write the nested JSON export to ``out``; return the number of level-1 trees.

    Without ``partial`` only level-1 nodes whose whole tree is complete are written.
    """
    written = 0
    out.write("[")
    for root in roots(store, partial):
        out.write(",\n" if written else "\n")
        with store.reading() as reader:
            _write_node(reader, root, out)
        written += 1
    out.write("\n]\n" if written else "]\n")
    return written


def flat_nodes(
    store: Store, *, partial: bool = False, level: int | None = None
) -> Iterator[FlatNode]:
    """Every node depth-first in API order (one ``level`` only, if given)."""
    for root in roots(store, partial):
        with store.reading() as reader:
            yield from _flatten(reader, root, "", "", level)


def _flatten(
    reader: Reader, node: NodeRow, parent_id: str, parent_path: str, only: int | None
) -> Iterator[FlatNode]:
    path = f"{parent_path}/{quote(node.id, safe='')}" if parent_path else quote(node.id, safe="")
    if only is None or node.level == only:
        yield FlatNode(
            node.level, node.id, node.name, node.type, parent_id, path, node.payload, node.status
        )
    if only is None or node.level < only:
        for child in reader.children(node.node):
            yield from _flatten(reader, child, node.id, path, only)


def write_rows(
    store: Store, out: TextIO, fmt: str, *, partial: bool = False, level: int | None = None
) -> int:
    """Write the ``jsonl`` or ``csv`` export; return the number of rows."""
    rows = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for node in flat_nodes(store, partial=partial, level=level):
            writer.writerow(node[: len(COLUMNS)])
            rows += 1
        return rows
    for node in flat_nodes(store, partial=partial, level=level):
        out.write(
            f'{{"level":{node.level},"id":{_text(node.id)},"name":{_text(node.name)},'
            f'"type":{_text(node.type)},"parent_id":{_text(node.parent_id)},'
            f'"path":{_text(node.path)},"payload":{node.payload}}}\n'
        )
        rows += 1
    return rows


def _write_node(reader: Reader, node: NodeRow, out: TextIO) -> None:
    out.write(
        f'{{"id":{_text(node.id)},"name":{_text(node.name)},"type":{_text(node.type)},'
        f'"level":{node.level},"status":"{node.status}","payload":{node.payload}'
    )
    if node.status == "failed" and node.error is not None:
        out.write(f',"error":{_text(node.error)}')
    out.write(',"children":[')
    for index, child in enumerate(reader.children(node.node)):
        if index:
            out.write(",")
        _write_node(reader, child, out)
    out.write("]}")


@contextmanager
def output_file(path: Path) -> Iterator[TextIO]:
    """A text file to write an export into, that ``path`` shows only once it is whole.

    The export goes to a temporary file beside ``path``, renamed over it at the end; on
    any error the temporary file is removed and ``path`` is left as it was. A path that
    is not a regular file (``/dev/null``, ``/dev/stdout``, a named pipe) is written
    directly: renaming over it would replace the device or the pipe itself. A failed
    write (a full disk, a folder gone) is a ``ConfigError`` naming ``path``.
    """
    try:
        direct = path.exists() and not path.is_file()
        if direct:
            with _opened_directly(path) as handle:
                yield handle
            return
        with (
            whole_or_nothing(path, mode=0o666) as temporary,
            temporary.open("w", encoding="utf-8", newline="") as handle,
        ):
            yield handle
    except OSError as error:
        reason = "no process reads from it" if error.errno == errno.ENXIO else error.strerror
        raise ConfigError(f"{path}: cannot write the export ({reason or error})") from error


def _opened_directly(path: Path) -> TextIO:
    # Non-blocking open: a named pipe that nobody reads fails at once instead of hanging.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return open(fd, "w", encoding="utf-8", newline="")
