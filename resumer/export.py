"""The export: the crawled trees as one JSON array, streamed.

Depth-first, API order, one level-1 tree a line; the output for the same
database is byte-identical from run to run. Memory holds one node's children
per level of depth, never the tree; each level-1 tree is read in its own short
read transaction, so a long export never starves the checkpoint's WAL.
"""

from __future__ import annotations

import json
from typing import TextIO

from resumer.store import SOURCE_NODE, NodeRow, Reader, Store

ROOTS_PAGE = 256  # level-1 nodes read per transaction


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_export(store: Store, out: TextIO, *, partial: bool = False) -> int:
    """Write the export to ``out``; return the number of level-1 trees written.

    Without ``partial`` only level-1 nodes whose whole tree is complete are written.
    """
    written = 0
    after = -1
    out.write("[")
    while True:
        with store.reading() as reader:
            roots = reader.children(SOURCE_NODE, after, ROOTS_PAGE)
        if not roots:
            break
        after = roots[-1].position
        for root in roots:
            if not partial and root.status != "complete":
                continue
            out.write(",\n" if written else "\n")
            with store.reading() as reader:
                _write_node(reader, root, out)
            written += 1
    out.write("\n]\n" if written else "]\n")
    return written


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
