"""``usage_records.interrupted``: a record settled after a crash from what was delivered.

Revision ID: 0004_usage_interrupted
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_usage_interrupted"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table; PostgreSQL adds the column in place.
    with op.batch_alter_table("usage_records") as table:
        table.add_column(
            sa.Column("interrupted", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("interrupted")
