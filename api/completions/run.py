"""Starting a legacy text completion: resolve, translate, fan out, start the backend streams.

Shared by the HTTP route and the batch worker, like ``api.chat.run`` for chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.backend.types import GenerationRequest
from api.chat.replies import ReplyMeta
from api.chat.run import check_choice_count, reply_meta, start_replies
from api.generation.assembly import ReplyState
from api.generation.choices import ChunkStream, fan_out
from api.generation.translate import completion_to_generations, prompt_texts
from api.ids import unique_hex
from api.schemas.completions import CompletionRequest
from api.services import Services
from api.settings import ModelKind, ServedModel


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
    param = "prompt" if len(per_prompt) > 1 else "n"
    check_choice_count(services, model, len(generations), param)
    streams, states = await start_replies(
        services, generations, lambda: "\n\n".join(prompt_texts(body)), "prompt"
    )
    meta = reply_meta(services, f"cmpl-{unique_hex()}", body.model)
    return CompletionRun(model, generations, streams, states, meta, len(per_prompt))
