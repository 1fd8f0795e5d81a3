"""The ``tree`` view: the crawl as a user reads it with ``sqlite3`` or any SQL tool, a
node a row with its path of ids from the root (a JSON array) and its parent's id.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Kept here as written (a migration does not change once released); the head schema
# (checkpoint.tables.HEAD_SCHEMA) holds the same statement.
TREE_VIEW = """CREATE VIEW tree (level, id, name, type, parent_id, path, status, payload) AS
    WITH RECURSIVE walk (node, level, id, name, type, parent_id, path, status, payload) AS (
        SELECT id, level, item_id, name, type, NULL, json_array(item_id), status, payload
        FROM nodes WHERE parent_id = 0
        UNION ALL
        SELECT c.id, c.level, c.item_id, c.name, c.type, walk.id,
            json_insert(walk.path, '$[#]', c.item_id), c.status, c.payload
        FROM nodes AS c JOIN walk ON c.parent_id = walk.node
    )
    SELECT level, id, name, type, parent_id, path, status, payload FROM walk"""


def upgrade() -> None:
    op.execute(TREE_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW tree")
