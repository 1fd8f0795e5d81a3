"""The running job's health: breaker state and in-flight limit, for `resumer status`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("breaker_state", sa.Text))  # closed / open / half-open
        batch.add_column(sa.Column("concurrency_limit", sa.Integer))  # calls in flight allowed
        batch.add_column(sa.Column("health_at", sa.Float))  # unix seconds of the last update


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("health_at")
        batch.drop_column("concurrency_limit")
        batch.drop_column("breaker_state")
