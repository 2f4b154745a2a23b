"""Conversation items in OpenAI's shape replace conversation messages.

Each stored message becomes a ``message`` item (same id, position = its old ``seq``): a user's
text as one ``input_text`` part, an assistant's as one ``output_text`` part; its usage is kept
for the deprecated ``/messages`` routes. A conversation's ``system_prompt`` becomes a ``system``
message item at position 0, before every other item, and the column goes; ``model`` becomes
optional (OpenAI's conversations have none). The downgrade turns message items back into
messages and a leading system message back into the system prompt; other item types have no
place in the old schema and are dropped.

Revision ID: 0005_conversation_items
Revises: 0004_usage_interrupted
Create Date: 2026-12-08
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_conversation_items"
down_revision = "0004_usage_interrupted"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)
_CHUNK = 500

_conversations = sa.table(
    "conversations",
    sa.column("id", sa.String),
    sa.column("model", sa.String),
    sa.column("system_prompt", sa.Text),
    sa.column("created_at", _WHEN),
)
_messages = sa.table(
    "conversation_messages",
    sa.column("id", sa.String),
    sa.column("conversation_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("role", sa.String),
    sa.column("content", sa.Text),
    sa.column("status", sa.String),
    sa.column("usage", sa.JSON),
    sa.column("created_at", _WHEN),
)
_items = sa.table(
    "conversation_items",
    sa.column("conversation_id", sa.String),
    sa.column("id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("type", sa.String),
    sa.column("role", sa.String),
    sa.column("item", sa.JSON),
    sa.column("usage", sa.JSON),
    sa.column("created_at", _WHEN),
)


def upgrade() -> None:
    # Read before any table changes: SQLite's batch mode rebuilds ``conversations``, and
    # dropping the old table cascades (foreign keys are on) to every row that points at it.
    rows = [*_system_prompt_items(), *_message_items()]
    op.drop_table("conversation_messages")
    with op.batch_alter_table("conversations") as table:
        table.drop_column("system_prompt")
        table.alter_column("model", existing_type=sa.String(200), nullable=True)
    op.create_table(
        "conversation_items",
        sa.Column(
            "conversation_id",
            sa.String(40),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("item", sa.JSON, nullable=False),
        sa.Column("usage", sa.JSON, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "id", name="pk_conversation_items"),
    )
    op.create_index(
        "ix_conversation_items_conv_position",
        "conversation_items",
        ["conversation_id", "position"],
        unique=True,
    )
    _insert(_items, rows)


def downgrade() -> None:
    # As in the upgrade: read the items first, then change the tables.
    prompts, messages = _messages_from_items()
    op.drop_table("conversation_items")
    bind = op.get_bind()
    bind.execute(sa.update(_conversations).where(_conversations.c.model.is_(None)).values(model=""))
    with op.batch_alter_table("conversations") as table:
        table.add_column(sa.Column("system_prompt", sa.Text, nullable=True))
        table.alter_column("model", existing_type=sa.String(200), nullable=False)
    for conversation_id, prompt in prompts.items():
        bind.execute(
            sa.update(_conversations)
            .where(_conversations.c.id == conversation_id)
            .values(system_prompt=prompt)
        )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(40),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("usage", sa.JSON, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
    )
    op.create_index(
        "ix_conversation_messages_conv_seq",
        "conversation_messages",
        ["conversation_id", "seq"],
        unique=True,
    )
    _insert(_messages, messages)


# --- upgrade: messages and system prompts to items --------------------------------------------


def _system_prompt_items() -> Iterator[dict[str, Any]]:
    query = sa.select(
        _conversations.c.id, _conversations.c.system_prompt, _conversations.c.created_at
    ).where(_conversations.c.system_prompt.is_not(None), _conversations.c.system_prompt != "")
    for row in op.get_bind().execute(query):
        item_id = f"msg_{secrets.token_hex(12)}"
        yield _row(
            row.id, item_id, 0, "system", row.system_prompt, "completed", None, row.created_at
        )


def _message_items() -> Iterator[dict[str, Any]]:
    query = sa.select(_messages).order_by(_messages.c.conversation_id, _messages.c.seq)
    for row in op.get_bind().execute(query):
        yield _row(
            row.conversation_id,
            row.id,
            row.seq,
            row.role,
            row.content,
            row.status,
            row.usage,
            row.created_at,
        )


def _row(
    conversation_id: str,
    item_id: str,
    position: int,
    role: str,
    text: str,
    status: str,
    usage: Any,
    created_at: datetime,
) -> dict[str, Any]:
    part: dict[str, Any] = (
        {"type": "output_text", "text": text, "annotations": []}
        if role == "assistant"
        else {"type": "input_text", "text": text}
    )
    item = {"type": "message", "id": item_id, "status": status, "role": role, "content": [part]}
    return {
        "conversation_id": conversation_id,
        "id": item_id,
        "position": position,
        "type": "message",
        "role": role,
        "item": item,
        "usage": usage,
        "created_at": created_at,
    }


def _insert(table: sa.TableClause, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        op.get_bind().execute(table.insert(), rows[start : start + _CHUNK])


# --- downgrade: message items back to messages -------------------------------------------------


def _messages_from_items() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Each conversation's system prompt and its user and assistant messages."""
    query = (
        sa.select(_items)
        .where(_items.c.type == "message")
        .order_by(_items.c.conversation_id, _items.c.position)
    )
    prompts: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    # Message ids were unique across conversations and at most 40 characters; item ids are
    # unique within their conversation only and may be longer: such ids are replaced.
    taken: set[str] = set()
    for row in op.get_bind().execute(query):
        text = "".join(
            part.get("text") or part.get("refusal") or "" for part in row.item.get("content", [])
        )
        if row.role in ("system", "developer"):
            # The first instruction of a conversation is its system prompt; later ones are lost.
            prompts.setdefault(row.conversation_id, text)
            continue
        if row.role not in ("user", "assistant"):
            continue
        message_id = row.id
        if len(message_id) > 40 or message_id in taken:
            message_id = f"msg_{secrets.token_hex(12)}"
        taken.add(message_id)
        status = row.item.get("status")
        rows.append(
            {
                "id": message_id,
                "conversation_id": row.conversation_id,
                "seq": row.position,
                "role": row.role,
                "content": text,
                "status": "completed" if status in (None, "completed") else "incomplete",
                "usage": row.usage,
                "created_at": row.created_at,
            }
        )
    return prompts, rows
