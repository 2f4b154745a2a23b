"""Conversations and their messages in the database.

Messages are numbered per conversation (``seq``, unique): the history is read in that order
and a message is appended with the next number.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage.pages import page_after
from api.storage.tables import conversation_messages, conversations
from api.storage.time import as_utc, utcnow


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    org_id: str
    key_id: str
    model: str
    system_prompt: str | None
    metadata: dict[str, str] | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": int(self.created_at.timestamp()),
            "model": self.model,
            "system_prompt": self.system_prompt,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    status: str
    usage: dict[str, int] | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation.message",
            "conversation_id": self.conversation_id,
            "created_at": int(self.created_at.timestamp()),
            "role": self.role,
            "content": self.content,
            "status": self.status,
            "usage": self.usage,
        }


class ConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, org_id: str, key_id: str, model: str, system_prompt: str | None, metadata: Any
    ) -> Conversation:
        record = Conversation(
            id=f"conv_{secrets.token_hex(12)}",
            org_id=org_id,
            key_id=key_id,
            model=model,
            system_prompt=system_prompt,
            metadata=metadata,
            created_at=utcnow(),
        )
        values = {field.name: getattr(record, field.name) for field in fields(record)}
        async with self._engine.begin() as conn:
            await conn.execute(conversations.insert().values(values))
        return record

    async def get(self, conversation_id: str, org_id: str) -> Conversation | None:
        query = select(conversations).where(
            conversations.c.id == conversation_id, conversations.c.org_id == org_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _conversation(row)

    async def page(self, org_id: str, after: str | None, limit: int) -> list[Conversation]:
        async with self._engine.connect() as conn:
            query = await page_after(conn, conversations, [conversations.c.org_id == org_id], after)
            if query is None:
                return []
            rows = (await conn.execute(query.limit(limit))).all()
        return [_conversation(row) for row in rows]

    async def delete(self, conversation_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(conversation_messages).where(
                    conversation_messages.c.conversation_id == conversation_id
                )
            )
            await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def append(
        self,
        conversation_id: str,
        role: str,
        content: str,
        status: str = "completed",
        usage: dict[str, int] | None = None,
    ) -> Message:
        """Add a message after the newest one (retried if another append took its number)."""
        for _ in range(5):
            try:
                return await self._append(conversation_id, role, content, status, usage)
            except IntegrityError:
                continue
        raise RuntimeError("conversation is being appended to too fast")

    async def _append(
        self,
        conversation_id: str,
        role: str,
        content: str,
        status: str,
        usage: dict[str, int] | None,
    ) -> Message:
        async with self._engine.begin() as conn:
            newest = (
                await conn.execute(
                    select(func.max(conversation_messages.c.seq)).where(
                        conversation_messages.c.conversation_id == conversation_id
                    )
                )
            ).scalar()
            message = Message(
                id=f"msg_{secrets.token_hex(12)}",
                conversation_id=conversation_id,
                seq=(newest or 0) + 1,
                role=role,
                content=content,
                status=status,
                usage=usage,
                created_at=utcnow(),
            )
            values = {field.name: getattr(message, field.name) for field in fields(message)}
            await conn.execute(conversation_messages.insert().values(values))
        return message

    async def messages(
        self,
        conversation_id: str,
        after: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Message]:
        """Messages in order (oldest first unless ``newest_first``), after the ``after`` id."""
        table = conversation_messages
        query = select(table).where(table.c.conversation_id == conversation_id)
        async with self._engine.connect() as conn:
            if after is not None:
                anchor = (
                    await conn.execute(
                        select(table.c.seq).where(
                            table.c.id == after, table.c.conversation_id == conversation_id
                        )
                    )
                ).scalar()
                if anchor is None:
                    return []
                query = query.where(table.c.seq < anchor if newest_first else table.c.seq > anchor)
            query = query.order_by(table.c.seq.desc() if newest_first else table.c.seq)
            if limit is not None:
                query = query.limit(limit)
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in rows]


def _conversation(row: Row[Any]) -> Conversation:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    return Conversation(**values)


def _message(row: Row[Any]) -> Message:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    return Message(**values)
