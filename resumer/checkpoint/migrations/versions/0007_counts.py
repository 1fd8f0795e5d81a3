"""Node counts per level and status, kept with every move, so `status` reads them at once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counts",
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("level", "status"),
    )
    op.execute(
        "INSERT INTO counts (level, status, n)"
        " SELECT level, status, count(*) FROM nodes WHERE level > 0 GROUP BY level, status"
    )


def downgrade() -> None:
    op.drop_table("counts")
