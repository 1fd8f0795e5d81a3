"""Level-1 source files (``resumer.query.sources``): CSV, JSON and JSON lines, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resumer.errors import ConfigError
from resumer.query.sources import read_source_file
from tests.unit.query.test_mapping import mapper


def test_csv_source_reads_rows_as_string_payloads(tmp_path: Path) -> None:
    source = tmp_path / "roots.csv"
    source.write_text("id,name,type,owner\nA1,Alpha,core,ann\nA2,Beta,misc,bob\n")
    items = list(read_source_file(source, mapper().response))
    assert [i.id for i in items] == ["A1", "A2"]
    assert json.loads(items[0].payload) == {
        "id": "A1",
        "name": "Alpha",
        "type": "core",
        "owner": "ann",
    }


def test_json_and_jsonl_sources_use_the_response_fields(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('[{"key": 1, "name": "a"}]')
    (tmp_path / "r.jsonl").write_text('{"key": 1, "name": "a"}\n\n{"key": 2}\n')
    response = mapper(id="key").response
    assert [i.id for i in read_source_file(tmp_path / "r.json", response)] == ["1"]
    assert [i.id for i in read_source_file(tmp_path / "r.jsonl", response)] == ["1", "2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.csv", "name,type\nA,b\n", "r.csv:1: expected a header row with id,name,type"),
        ("r.csv", "id,name,type\n,x,y\n", "r.csv:2: empty id"),
        ("r.json", "{", "not valid JSON"),
        ("r.jsonl", '{"id": 1}\n{"name": 2}\n', "r.jsonl:2: item 2 has no usable id"),
    ],
)
def test_bad_source_files_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match=message):
        list(read_source_file(tmp_path / name, mapper().response))
