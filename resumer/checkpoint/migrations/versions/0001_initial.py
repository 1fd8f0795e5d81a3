"""The checkpoint: the job and the tree of nodes.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_text", sa.Text, nullable=False),  # the job file as written; ${VAR} kept
        sa.Column("origin", sa.Text, nullable=False),  # the job file's path, for messages
        sa.Column("base_dir", sa.Text, nullable=False),  # relative source files start here
        sa.Column("created_at", sa.Float, nullable=False),  # unix seconds
        sa.Column("started_at", sa.Float),  # start of the latest run
        sa.Column("finished_at", sa.Float),  # when the job last ran out of work
        sa.Column("run_seconds", sa.Float, nullable=False, server_default="0"),
        sa.CheckConstraint("id = 1", name="one_job"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        # Node 0 is the job itself (level 0): its children are the level-1 nodes.
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),  # the item's JSON as the API gave it
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("open_children", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("parent_id", "position", name="uq_nodes_parent_position"),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'waiting', 'complete', 'failed')",
            name="ck_nodes_status",
        ),
    )
    op.create_index(
        "ix_nodes_pending",
        "nodes",
        ["level", "id"],
        sqlite_where=sa.text("status = 'pending'"),
    )
    # Only the few rows being worked on are indexed by status: the hundreds of
    # thousands of complete ones cost no index upkeep. Counts scan the table.
    op.create_index(
        "ix_nodes_running",
        "nodes",
        ["id"],
        sqlite_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_nodes_running", table_name="nodes")
    op.drop_index("ix_nodes_pending", table_name="nodes")
    op.drop_table("nodes")
    op.drop_table("job")
