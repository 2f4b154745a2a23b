"""A conversation's next reply (deprecated /messages route): the prompt from the stored
items, then the stored answer.

The chat itself goes through ``begin_chat`` like ``POST /v1/chat/completions``. A streamed
reply is stored when its stream ends, however it ends: cut short (client gone, error), what
was generated is stored with status ``incomplete``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from api.chat.replies import chat_chunk_events, collect_chat_completion
from api.chat.run import ChatRun, begin_chat
from api.conversations.history import Turn, fit_history, prompt_messages, shorter
from api.conversations.legacy import legacy_message, text_message
from api.errors import ContextLengthExceededError
from api.http.request_body import parse_payload
from api.schemas.chat import ChatCompletionRequest
from api.schemas.conversations import AppendMessage
from api.services import Services
from api.settings import ModelKind
from api.storage.conversation_items import ConversationNotFound, append_items

logger = logging.getLogger(__name__)

# What the chat request takes from the message; ``stream`` too, so that a streamed reply is
# rendered as one and goes out token by token.
_OPTIONS = ("stream", "max_tokens", "temperature", "top_p", "stop", "seed")


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a reply goes: the conversation, its organization and the model that answers."""

    db: AsyncEngine
    org_id: str
    conversation_id: str
    model: str
    system_prompt: str | None


async def start_reply(
    services: Services,
    thread: Thread,
    history: Sequence[Turn],
    body: AppendMessage,
    request_id: str,
) -> ChatRun:
    """Begin the chat over the newest history that fits (fewer turns if Triton says so)."""
    model = services.registry.resolve(thread.model, ModelKind.CHAT)
    max_tokens = body.max_tokens or model.default_max_tokens
    turns: list[Turn] | None = fit_history(
        thread.system_prompt, history, model.context_length, max_tokens
    )
    while True:
        assert turns is not None
        request = chat_request(thread.model, thread.system_prompt, turns, body)
        try:
            return await begin_chat(services, request, request_id)
        except ContextLengthExceededError:
            turns = shorter(turns)
            if turns is None:
                raise
            logger.info("history over the context: retrying with %d messages", len(turns))


def chat_request(
    model: str, system_prompt: str | None, turns: Sequence[Turn], body: AppendMessage
) -> ChatCompletionRequest:
    payload: dict[str, Any] = {
        "model": model,
        "messages": prompt_messages(system_prompt, turns),
        **{name: getattr(body, name) for name in _OPTIONS if getattr(body, name) is not None},
    }
    return parse_payload(orjson.dumps(payload), ChatCompletionRequest)


async def store_turn(
    thread: Thread, role: str, text: str, status: str = "completed", usage: Any = None
) -> dict[str, Any]:
    """Append one text message; the deprecated route's view of it."""
    (stored,) = await append_items(
        thread.db, thread.org_id, thread.conversation_id, [text_message(role, text, status)],
        usage=usage,
    )  # fmt: skip
    return legacy_message(stored)


async def collect_reply(run: ChatRun, thread: Thread) -> dict[str, Any]:
    completion = await collect_chat_completion(run.streams, run.generations, run.meta, run.states)
    content = completion.choices[0].message.content or ""
    return await store_turn(thread, "assistant", content, usage=completion.usage.model_dump())


async def streamed_reply(run: ChatRun, thread: Thread) -> AsyncGenerator[bytes, None]:
    """The chat's chunk events; the text they carried is stored when the stream ends."""
    parts: list[str] = []
    finished = False
    events = chat_chunk_events(run.streams, run.generations, run.meta, True, run.states, run.chunks)
    try:
        async for payload in events:
            chunk = orjson.loads(payload)
            for choice in chunk["choices"]:
                parts.append(choice["delta"].get("content") or "")
                finished = finished or choice["finish_reason"] is not None
            yield payload
    finally:
        await events.aclose()
        usage = run.states[0].usage().model_dump()
        # Shielded: a client that left cancels this task, and the reply must still be kept.
        with anyio.CancelScope(shield=True):
            status = "completed" if finished else "incomplete"
            try:
                await store_turn(thread, "assistant", "".join(parts), status, usage)
            except ConversationNotFound:
                logger.info("conversation %s deleted mid-reply", thread.conversation_id)
