"""Leaves by rule: the ``[[crawl.leaf]]`` rule that made a node a leaf (complete, never
queried); NULL for every other node, so an older checkpoint needs nothing filled in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("leaf_rule", sa.Integer))  # NULL: not a leaf by rule


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("leaf_rule")
