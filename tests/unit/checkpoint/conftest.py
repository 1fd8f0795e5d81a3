"""The checkpoint's unit tests' fixture: a new checkpoint in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resumer.checkpoint.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.create(tmp_path / "c.db", "job text", "job.toml", str(tmp_path))
    yield store
    store.close()
