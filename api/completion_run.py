"""Starting a legacy text completion: resolve, translate, fan out, start the backend streams.

Shared by the HTTP route and the batch worker, like ``api.chat_run`` for chat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from api.assembly import ReplyState
from api.backend.types import GenerationRequest
from api.chat_replies import ReplyMeta
from api.choices import ChunkStream, fan_out, start_streams
from api.moderation.hook import check_prompt, guard_replies
from api.schemas.completions import CompletionRequest
from api.services import Services
from api.settings import ModelKind, ServedModel
from api.translate import completion_to_generations, prompt_texts


@dataclass(frozen=True, slots=True)
class CompletionRun:
    """A started completion: one request, stream and state per (prompt, choice)."""

    model: ServedModel
    generations: list[GenerationRequest]
    streams: list[ChunkStream]
    states: list[ReplyState]
    meta: ReplyMeta
    prompts: int


async def begin_completion(
    services: Services, body: CompletionRequest, request_id: str
) -> CompletionRun:
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    per_prompt = completion_to_generations(body, model, request_id)
    generations = [
        choice
        for index, generation in enumerate(per_prompt)
        for choice in fan_out(generation, body.n, first_index=index * body.n)
    ]
    options = services.settings.moderation
    await check_prompt(services.content_filter, options, "\n\n".join(prompt_texts(body)), "prompt")
    streams = await start_streams(services.backend, generations)
    states = [ReplyState() for _ in generations]
    streams = guard_replies(services.content_filter, options, streams, states, generations)
    meta = ReplyMeta(
        id=f"cmpl-{request_id}",
        created=int(time.time()),
        model=body.model,
        system_fingerprint=services.settings.system_fingerprint,
    )
    return CompletionRun(model, generations, streams, states, meta, len(per_prompt))
