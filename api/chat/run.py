"""Starting a chat completion: resolve, translate, fan out, start the backend streams.

Shared by the HTTP route (JSON or SSE) and the WebSocket route, which differ only in how the
chunks travel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.backend.types import GenerationRequest
from api.chat.replies import ChatChunks, ReplyMeta
from api.errors import InvalidRequestError
from api.generation.assembly import ReplyState
from api.generation.choices import ChunkStream, fan_out, start_streams
from api.generation.translate import chat_to_generation
from api.ids import unique_hex
from api.moderation.hook import check_prompt, guard_replies
from api.schemas.chat import ChatCompletionRequest
from api.services import Services
from api.settings import ModelKind, ServedModel


@dataclass(frozen=True, slots=True)
class ChatRun:
    """A started chat completion: one request, stream and state per choice."""

    model: ServedModel
    generations: list[GenerationRequest]
    streams: list[ChunkStream]
    # Owned here so whatever records usage sees the token counts after the stream ends.
    states: list[ReplyState]
    meta: ReplyMeta
    # A streamed reply's chunks that need no model output (None for a JSON reply).
    chunks: ChatChunks | None = None


async def begin_chat(services: Services, body: ChatCompletionRequest, request_id: str) -> ChatRun:
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    generations = fan_out(chat_to_generation(body, model, request_id), body.n)
    check_choice_count(services, model, len(generations), "n")
    meta = reply_meta(services, f"chatcmpl-{unique_hex()}", body.model)
    chunks = None
    if body.stream:
        chunks = ChatChunks(meta, len(generations))
        # Runs at the loop's next turn: once this task waits on Triton (the request is out),
        # so the role chunks and the per-token template are ready before the first token.
        asyncio.get_running_loop().call_soon(chunks.render)
    streams, states = await start_replies(
        services,
        generations,
        lambda: "\n\n".join(message.text() for message in body.messages),
        "messages",
    )
    return ChatRun(model, generations, streams, states, meta, chunks)


async def start_replies(
    services: Services,
    generations: list[GenerationRequest],
    prompt: Callable[[], str],
    param: str,
) -> tuple[list[ChunkStream], list[ReplyState]]:
    """Check the prompt (``prompt`` builds its text, for a content filter only), start every
    backend stream and guard its output: chat and legacy completions start their replies
    alike."""
    options = services.settings.moderation
    await check_prompt(services.content_filter, options, prompt, param)
    states = [ReplyState() for _ in generations]
    streams = await start_streams(services.backend, generations)
    streams = guard_replies(services.content_filter, options, streams, states, generations)
    return streams, states


def check_choice_count(services: Services, model: ServedModel, count: int, param: str) -> None:
    """A request whose choices could never all hold a slot of ``model`` at once is refused up
    front: they would wait for each other, and hold the model's slots from everyone else
    meanwhile."""
    capacity = services.resilience.admission.capacity(model.route)
    limit = min(services.settings.resilience.max_choices_per_request, capacity)
    if count > limit:
        raise InvalidRequestError(
            f"This request asks for {count} completions (prompts x n); this deployment runs "
            f"at most {limit} per request. Send fewer prompts or a smaller n.",
            param=param,
            code="too_many_choices",
        )


def reply_meta(services: Services, reply_id: str, model_name: str) -> ReplyMeta:
    return ReplyMeta(
        id=reply_id,
        created=int(time.time()),
        model=model_name,
        system_fingerprint=services.settings.system_fingerprint,
    )
