"""Starting a chat completion: resolve, translate, fan out, start the backend streams.

Shared by the HTTP route (JSON or SSE) and the WebSocket route, which differ only in how the
chunks travel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from api.assembly import ReplyState
from api.backend.types import GenerationRequest
from api.chat_replies import ReplyMeta
from api.choices import ChunkStream, fan_out, start_streams
from api.moderation.hook import check_prompt, guard_replies
from api.schemas.chat import ChatCompletionRequest
from api.services import Services
from api.settings import ModelKind, ServedModel
from api.translate import chat_to_generation


@dataclass(frozen=True, slots=True)
class ChatRun:
    """A started chat completion: one request, stream and state per choice."""

    model: ServedModel
    generations: list[GenerationRequest]
    streams: list[ChunkStream]
    # Owned here so whatever records usage sees the token counts after the stream ends.
    states: list[ReplyState]
    meta: ReplyMeta


async def begin_chat(services: Services, body: ChatCompletionRequest, request_id: str) -> ChatRun:
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    generations = fan_out(chat_to_generation(body, model, request_id), body.n)
    options = services.settings.moderation
    prompt = "\n\n".join(message.text() for message in body.messages)
    await check_prompt(services.content_filter, options, prompt, "messages")
    states = [ReplyState() for _ in generations]
    streams = await start_streams(services.backend, generations)
    streams = guard_replies(services.content_filter, options, streams, states, generations)
    meta = ReplyMeta(
        id=f"chatcmpl-{request_id}",
        created=int(time.time()),
        model=body.model,
        system_fingerprint=services.settings.system_fingerprint,
    )
    return ChatRun(model, generations, streams, states, meta)
