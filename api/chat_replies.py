"""Chat completion objects and chunks built from the assembled reply."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from api.assembly import ReplyState, finish_reason, text_deltas
from api.backend.types import GenerationChunk, SamplingParams
from api.schemas.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
)
from api.schemas.common import FinishReason


@dataclass(frozen=True, slots=True)
class ReplyMeta:
    """The fields every object of one completion shares."""

    id: str
    created: int
    model: str
    system_fingerprint: str


async def chat_chunk_events(
    chunks: AsyncGenerator[GenerationChunk, None],
    params: SamplingParams,
    meta: ReplyMeta,
    include_usage: bool,
) -> AsyncGenerator[bytes, None]:
    """JSON payloads of ``chat.completion.chunk`` objects, in OpenAI's order."""
    state = ReplyState()
    yield _chunk(meta, ChoiceDelta(role="assistant", content=""))
    async for text in text_deltas(chunks, params, state):
        yield _chunk(meta, ChoiceDelta(content=text))
    yield _chunk(meta, ChoiceDelta(), finish_reason(state, params))
    if include_usage:
        usage_chunk = ChatCompletionChunk(
            id=meta.id,
            created=meta.created,
            model=meta.model,
            system_fingerprint=meta.system_fingerprint,
            choices=[],
            usage=state.usage(),
        )
        yield usage_chunk.model_dump_json().encode()


async def collect_chat_completion(
    chunks: AsyncGenerator[GenerationChunk, None], params: SamplingParams, meta: ReplyMeta
) -> ChatCompletion:
    state = ReplyState()
    text = "".join([delta async for delta in text_deltas(chunks, params, state)])
    choice = ChatChoice(
        index=0,
        message=AssistantMessage(content=text),
        finish_reason=finish_reason(state, params),
    )
    return ChatCompletion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=[choice],
        usage=state.usage(),
    )


def _chunk(meta: ReplyMeta, delta: ChoiceDelta, reason: FinishReason | None = None) -> bytes:
    chunk = ChatCompletionChunk(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=[ChunkChoice(index=0, delta=delta, finish_reason=reason)],
    )
    return chunk.model_dump_json().encode()
