"""Alert states, so an alert fires once per change even across stops and resumes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("alerts", sa.Text))  # JSON: {"rule": "firing" | "resolved"}


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("alerts")
