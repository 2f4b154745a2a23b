"""The deprecated ``/messages`` view of a conversation's items.

A message there is a ``message`` item of role user or assistant, its text parts joined; the
prompt of a reply is the conversation's system and developer messages (kept whole, first)
and its user and assistant messages (truncated by ``api.conversations.history``). Function
call items are left out: the route predates tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.conversations.items import message_text, text_part
from api.storage.conversation_items import StoredItem

CHAT_ROLES = ("user", "assistant")
INSTRUCTION_ROLES = ("system", "developer")


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    role: str
    content: str


def legacy_message(stored: StoredItem) -> dict[str, Any]:
    status = stored.item.get("status")
    return {
        "id": stored.id,
        "object": "conversation.message",
        "conversation_id": stored.conversation_id,
        "created_at": int(stored.created_at.timestamp()),
        "role": stored.role,
        "content": message_text(stored.item),
        "status": "completed" if status in (None, "completed") else "incomplete",
        "usage": stored.usage,
    }


def history_of(items: Sequence[StoredItem]) -> tuple[str | None, list[HistoryTurn]]:
    """The system prompt (instructions joined, None without any) and the chat turns."""
    messages = [item for item in items if item.type == "message"]
    instructions = [message_text(m.item) for m in messages if m.role in INSTRUCTION_ROLES]
    turns = [
        HistoryTurn(str(m.role), message_text(m.item)) for m in messages if m.role in CHAT_ROLES
    ]
    return ("\n\n".join(instructions) or None), turns


def text_message(role: str, text: str, status: str = "completed") -> dict[str, Any]:
    """A message item of one text part, as the /messages routes store turns."""
    return {"type": "message", "status": status, "role": role, "content": [text_part(role, text)]}
