"""Priorities: each node's claim priority, and when it completed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        # Higher goes first; inherited down a subtree (see [priority] in the README).
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("completed_at", sa.Float))  # unix seconds
    op.drop_index("ix_nodes_pending", table_name="nodes")
    op.create_index(
        "ix_nodes_pending",
        "nodes",
        ["level", sa.text("priority DESC"), "id"],
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_nodes_pending", table_name="nodes")
    op.create_index(
        "ix_nodes_pending", "nodes", ["level", "id"], sqlite_where=sa.text("status = 'pending'")
    )
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("completed_at")
        batch.drop_column("priority")
