"""A quota closed: the long wait every call sits out now (``paused_until``, for `status`)
and, past ``[rate] max_pause``, the time to resume after (``resume_after``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("paused_until", sa.Float))  # Unix time; NULL = not paused
        batch.add_column(sa.Column("resume_after", sa.Float))  # Unix time; NULL = any time


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("resume_after")
        batch.drop_column("paused_until")
