"""The checkpoint's schema: the revision resumer knows is Alembic's head, and a new
checkpoint, created from ``HEAD_SCHEMA`` without Alembic, has exactly the schema that
running every migration on an empty database builds."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from resumer.checkpoint.store import Store
from tests.unit.checkpoint.nodes import alembic


def test_the_known_schema_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from resumer.checkpoint.tables import MIGRATIONS_DIR, SCHEMA_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_a_new_checkpoint_has_the_schema_the_migrations_build(tmp_path: Path) -> None:
    """A new checkpoint is created from schema.HEAD_SCHEMA, without Alembic: it must be
    what running every migration on an empty database gives."""
    created = Store.create(tmp_path / "created.db", "job text", "job.toml", "/jobs")
    created.close()
    migrated = tmp_path / "migrated.db"
    alembic(migrated, "upgrade", "head")
    assert _schema(created.path) == _schema(migrated)
    assert len(_schema(migrated)) == 10  # 4 tables, 3 automatic indexes, 2 partial ones, a view


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    """The schema as SQLite records it, with the whitespace of the SQL text normalised."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        return [(kind, name, sql and _tokens(sql)) for kind, name, sql in rows]


def _tokens(sql: str) -> str:
    return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()
