"""The send rate the pacer allowed last, and why it last changed, for `status`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("send_rate", sa.Float))  # calls/s allowed; NULL = no limit
        batch.add_column(sa.Column("send_rate_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("send_rate_reason")
        batch.drop_column("send_rate")
