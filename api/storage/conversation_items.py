"""Conversations and their items (OpenAI's typed items) in the database.

Every function is scoped by organization: a conversation of another organization is reported
as missing (``ConversationNotFound``), exactly like one that does not exist. Items are stored as
their wire JSON (``message``, ``function_call``, ``function_call_output``, ...) and numbered
per conversation (``position``, unique): listings follow that order and an append takes the
next numbers, retried when a concurrent append (another replica, too) took them first.
Callers validate what a client sent (``api.conversations.items``) before storing it here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import anyio
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.storage.pages import page_after
from api.storage.tables import conversation_items, conversations
from api.storage.time import as_utc, utcnow

Order = Literal["asc", "desc"]

# Id prefixes by item type, as OpenAI's ids look; any other type gets ``item_``.
_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}
_APPEND_ATTEMPTS = 10


class ConversationNotFound(LookupError):
    """No such conversation in the caller's organization."""


class ItemIdTaken(ValueError):
    """An item's id is already used in the conversation (``index``: the item's place)."""

    def __init__(self, item_id: str, index: int) -> None:
        super().__init__(f"An item with id '{item_id}' already exists in this conversation.")
        self.item_id = item_id
        self.index = index


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    org_id: str
    key_id: str
    # Set only for conversations created for the deprecated /messages routes.
    model: str | None
    metadata: dict[str, str] | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """OpenAI's ``conversation`` object."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": int(self.created_at.timestamp()),
            "metadata": self.metadata or {},
        }


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: str
    conversation_id: str
    position: int
    type: str
    role: str | None
    item: dict[str, Any]
    usage: dict[str, int] | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The item as the API shows it (its wire JSON, id included)."""
        return self.item


def new_item_id(item_type: str) -> str:
    """A new id of an item of ``item_type``, prefixed as OpenAI's are (``msg_``, ``fc_``...):
    the one source for conversation items and the Responses API's items alike."""
    return f"{_PREFIXES.get(item_type, 'item')}_{secrets.token_hex(24)}"


async def create_conversation(
    db: AsyncEngine,
    org_id: str,
    metadata: Mapping[str, str] | None,
    items: Sequence[Mapping[str, Any]] = (),
    *,
    key_id: str = "",
    model: str | None = None,
) -> Conversation:
    """A new conversation holding ``items`` (positions from 1), in one transaction."""
    record = Conversation(
        id=f"conv_{secrets.token_hex(16)}",
        org_id=org_id,
        key_id=key_id,
        model=model,
        metadata=dict(metadata) if metadata is not None else None,
        created_at=utcnow(),
    )
    async with db.begin() as conn:
        await conn.execute(
            conversations.insert().values(
                id=record.id,
                org_id=org_id,
                key_id=key_id,
                model=model,
                metadata=record.metadata,
                created_at=record.created_at,
            )
        )
        await _insert(conn, record.id, items, None, first_position=1)
    return record


async def get_conversation(db: AsyncEngine, org_id: str, conversation_id: str) -> Conversation:
    async with db.connect() as conn:
        return await _owned(conn, org_id, conversation_id)


async def list_conversations(
    db: AsyncEngine, org_id: str, after: str | None, limit: int
) -> list[Conversation]:
    """The organization's conversations, newest first (an extension: OpenAI lists none)."""
    async with db.connect() as conn:
        query = await page_after(conn, conversations, [conversations.c.org_id == org_id], after)
        if query is None:
            return []
        rows = (await conn.execute(query.limit(limit))).all()
    return [_conversation(row) for row in rows]


async def update_metadata(
    db: AsyncEngine, org_id: str, conversation_id: str, metadata: Mapping[str, str] | None
) -> Conversation:
    stored = dict(metadata) if metadata is not None else None
    async with db.begin() as conn:
        found = await _owned(conn, org_id, conversation_id)
        await conn.execute(
            update(conversations).where(conversations.c.id == found.id).values(metadata=stored)
        )
    return Conversation(found.id, found.org_id, found.key_id, found.model, stored, found.created_at)


async def delete_conversation(db: AsyncEngine, org_id: str, conversation_id: str) -> None:
    async with db.begin() as conn:
        found = await _owned(conn, org_id, conversation_id)
        await conn.execute(
            delete(conversation_items).where(conversation_items.c.conversation_id == found.id)
        )
        await conn.execute(delete(conversations).where(conversations.c.id == found.id))


async def append_items(
    db: AsyncEngine,
    org_id: str,
    conversation_id: str,
    items: Sequence[Mapping[str, Any]],
    *,
    usage: dict[str, int] | None = None,
) -> list[StoredItem]:
    """Store ``items`` after the newest; an item without an ``id`` is given one.

    ``usage`` (the deprecated /messages replies) is stored with each item of this call.
    Raises ``ConversationNotFound`` and ``ItemIdTaken``.
    """
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            async with db.begin() as conn:
                await _owned(conn, org_id, conversation_id)
                newest = (
                    await conn.execute(
                        select(func.max(conversation_items.c.position)).where(
                            conversation_items.c.conversation_id == conversation_id
                        )
                    )
                ).scalar()
                return await _insert(conn, conversation_id, items, usage, (newest or 0) + 1)
        except IntegrityError:
            # Another append took these positions (ids were checked first): read again.
            await anyio.sleep(0.005 * (attempt + 1))
    raise RuntimeError("conversation is being appended to too fast")


async def list_items(
    db: AsyncEngine,
    org_id: str,
    conversation_id: str,
    after: str | None = None,
    limit: int | None = 20,
    order: Order = "desc",
    *,
    roles: Sequence[str] | None = None,
) -> list[StoredItem] | None:
    """Items in ``order`` of position after the ``after`` item (None: no such item).

    ``roles`` keeps only messages of those roles. Raises ``ConversationNotFound``.
    """
    table = conversation_items
    query = select(table).where(table.c.conversation_id == conversation_id)
    if roles is not None:
        query = query.where(table.c.type == "message", table.c.role.in_(list(roles)))
    newest_first = order == "desc"
    async with db.connect() as conn:
        await _owned(conn, org_id, conversation_id)
        if after is not None:
            anchor = (
                await conn.execute(
                    select(table.c.position).where(
                        table.c.conversation_id == conversation_id, table.c.id == after
                    )
                )
            ).scalar()
            if anchor is None:
                return None
            query = query.where(
                table.c.position < anchor if newest_first else table.c.position > anchor
            )
        query = query.order_by(table.c.position.desc() if newest_first else table.c.position)
        if limit is not None:
            query = query.limit(limit)
        rows = (await conn.execute(query)).all()
    return [_item(row) for row in rows]


async def get_item(
    db: AsyncEngine, org_id: str, conversation_id: str, item_id: str
) -> StoredItem | None:
    """The item, or None when the conversation has none by that id."""
    async with db.connect() as conn:
        await _owned(conn, org_id, conversation_id)
        row = (
            await conn.execute(
                select(conversation_items).where(
                    conversation_items.c.conversation_id == conversation_id,
                    conversation_items.c.id == item_id,
                )
            )
        ).first()
    return None if row is None else _item(row)


async def delete_item(db: AsyncEngine, org_id: str, conversation_id: str, item_id: str) -> bool:
    """Delete the item; False when the conversation has none by that id."""
    async with db.begin() as conn:
        await _owned(conn, org_id, conversation_id)
        result = await conn.execute(
            delete(conversation_items).where(
                conversation_items.c.conversation_id == conversation_id,
                conversation_items.c.id == item_id,
            )
        )
    return bool(result.rowcount)


async def _owned(conn: AsyncConnection, org_id: str, conversation_id: str) -> Conversation:
    row = (
        await conn.execute(
            select(conversations).where(
                conversations.c.id == conversation_id, conversations.c.org_id == org_id
            )
        )
    ).first()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return _conversation(row)


async def _insert(
    conn: AsyncConnection,
    conversation_id: str,
    items: Sequence[Mapping[str, Any]],
    usage: dict[str, int] | None,
    first_position: int,
) -> list[StoredItem]:
    now = utcnow()
    stored: list[StoredItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(items):
        item = dict(raw)
        item_id = str(item.get("id") or new_item_id(str(item["type"])))
        item["id"] = item_id
        if item_id in seen:
            raise ItemIdTaken(item_id, index)
        seen.add(item_id)
        role = item.get("role") if item["type"] == "message" else None
        stored.append(
            StoredItem(
                id=item_id,
                conversation_id=conversation_id,
                position=first_position + index,
                type=str(item["type"]),
                role=str(role) if role is not None else None,
                item=item,
                usage=usage,
                created_at=now,
            )
        )
    if not stored:
        return []
    taken = (
        await conn.execute(
            select(conversation_items.c.id).where(
                conversation_items.c.conversation_id == conversation_id,
                conversation_items.c.id.in_(list(seen)),
            )
        )
    ).scalars()
    for item_id in taken:
        raise ItemIdTaken(item_id, next(i for i, s in enumerate(stored) if s.id == item_id))
    await conn.execute(
        conversation_items.insert(),
        [
            {
                "conversation_id": s.conversation_id,
                "id": s.id,
                "position": s.position,
                "type": s.type,
                "role": s.role,
                "item": s.item,
                "usage": s.usage,
                "created_at": s.created_at,
            }
            for s in stored
        ],
    )
    return stored


def _conversation(row: Row[Any]) -> Conversation:
    values = dict(row._mapping)
    return Conversation(
        id=values["id"],
        org_id=values["org_id"],
        key_id=values["key_id"],
        model=values["model"],
        metadata=values["metadata"],
        created_at=as_utc(values["created_at"]),  # type: ignore[arg-type]
    )


def _item(row: Row[Any]) -> StoredItem:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    return StoredItem(**values)
