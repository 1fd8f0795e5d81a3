"""The level-1 source files: ``[source] file`` read as ``Item``s, a .csv (header row
with id,name,type), a .json array of objects or a .jsonl file (one object a line).

Objects are mapped as a response's items are (``mapping.Mapper``); every
mistake is a ``ConfigError`` naming the file (and the line when there is one).
A ``[source] url`` is fetched by ``client.Client``, not here: this module makes
no HTTP call.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from resumer.errors import ConfigError
from resumer.job.settings import Response
from resumer.model import Item
from resumer.query.mapping import Constant, Mapper, MappingError, kind_of
from resumer.query.shape import Shape


def read_source_file(path: Path, response: Response, shape: Shape | None = None) -> Iterator[Item]:
    """Level-1 items from a .csv (header with id,name,type), .json (array) or .jsonl file;
    ``shape``: the leaf and drop rules for level 1."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            yield from _read_csv(path, shape)
        elif suffix == ".json":
            yield from _read_json(path, Mapper(response, shape))
        else:
            yield from _read_jsonl(path, Mapper(response, shape))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such source file (source.file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the source file ({exc})") from exc


def _read_csv(path: Path, shape: Shape | None) -> Iterator[Item]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "id" not in header:
            raise ConfigError(f"{path}:1: expected a header row with id,name,type; got {header}")
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise ConfigError(f"{path}:{line}: expected {len(header)} fields as in the header")
            if not row["id"]:
                raise ConfigError(f"{path}:{line}: empty id")
            item = Item(
                id=row["id"],
                name=row.get("name") or "",
                type=row.get("type") or "",
                payload=json.dumps(row, ensure_ascii=False, separators=(",", ":")),
            )
            yield item if shape is None else shape.mark(item, row)


def _read_json(path: Path, mapper: Mapper) -> Iterator[Item]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=Constant.parse)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, list):
        raise ConfigError(f"{path}: expected a JSON array of objects, got {kind_of(document)}")
    for index, item in enumerate(document):
        try:
            yield mapper.item(item, index)
        except MappingError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _read_jsonl(path: Path, mapper: Mapper) -> Iterator[Item]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield mapper.item(json.loads(line, parse_constant=Constant.parse), line_number)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line_number}: {exc}") from None
