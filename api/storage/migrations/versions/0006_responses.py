"""Responses API: ``responses`` and their background stream events ``response_events``.

Revision ID: 0006_responses
Revises: 0005_conversation_items
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_responses"
down_revision = "0005_conversation_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("background", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("input_count", sa.Integer(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("incomplete_details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_responses"),
    )
    op.create_index("ix_responses_org_created", "responses", ["org_id", "created_at"])
    op.create_index("ix_responses_status_lease", "responses", ["status", "lease_expires"])
    op.create_index("ix_responses_expires", "responses", ["expires_at"])
    op.create_table(
        "response_events",
        sa.Column(
            "response_id",
            sa.String(64),
            sa.ForeignKey(
                "responses.id",
                ondelete="CASCADE",
                name="fk_response_events_response_id_responses",
            ),
            nullable=False,
        ),
        sa.Column("sequence_number", sa.Integer(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("response_id", "sequence_number", name="pk_response_events"),
    )


def downgrade() -> None:
    op.drop_table("response_events")
    op.drop_index("ix_responses_expires", table_name="responses")
    op.drop_index("ix_responses_status_lease", table_name="responses")
    op.drop_index("ix_responses_org_created", table_name="responses")
    op.drop_table("responses")
