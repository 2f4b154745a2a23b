"""Chat completion objects and chunks built from the assembled choices."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from api.assembly import ReplyState, finish_reason
from api.backend.types import GenerationRequest
from api.choices import ChunkStream, choice_events
from api.chunk_templates import SplicedChunks
from api.schemas.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
)
from api.schemas.common import FinishReason, Usage


@dataclass(frozen=True, slots=True)
class ReplyMeta:
    """The fields every object of one completion shares."""

    id: str
    created: int
    model: str
    system_fingerprint: str


def total_usage(states: Sequence[ReplyState], prompts: int = 1) -> Usage:
    """Prompt tokens count once per distinct prompt, completions once per choice."""
    per_prompt = len(states) // max(prompts, 1)
    prompt_tokens = sum(state.prompt_tokens for state in states[::per_prompt])
    completion_tokens = sum(state.completion_tokens for state in states)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


async def chat_chunk_events(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    meta: ReplyMeta,
    include_usage: bool,
    states: Sequence[ReplyState],
) -> AsyncGenerator[bytes, None]:
    """JSON payloads of ``chat.completion.chunk`` objects, in OpenAI's order."""
    for index in range(len(streams)):
        yield _chunk(meta, index, ChoiceDelta(role="assistant", content=""))
    # The per-token chunks: rendered once per choice, then only the text is encoded.
    contents = SplicedChunks(lambda index, text: _chunk(meta, index, ChoiceDelta(content=text)))
    async for event in choice_events(streams, requests, states):
        if event.text is None:
            reason = finish_reason(states[event.index], requests[event.index].params)
            yield _chunk(meta, event.index, ChoiceDelta(), reason)
        else:
            yield contents.encode(event.index, event.text)
    if include_usage:
        usage_chunk = ChatCompletionChunk(
            id=meta.id,
            created=meta.created,
            model=meta.model,
            system_fingerprint=meta.system_fingerprint,
            choices=[],
            usage=total_usage(states),
        )
        yield usage_chunk.model_dump_json().encode()


async def collect_chat_completion(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    meta: ReplyMeta,
    states: Sequence[ReplyState],
) -> ChatCompletion:
    texts = [""] * len(streams)
    async for event in choice_events(streams, requests, states):
        if event.text is not None:
            texts[event.index] += event.text
    choices = [
        ChatChoice(
            index=index,
            message=AssistantMessage(content=text),
            finish_reason=finish_reason(states[index], requests[index].params),
        )
        for index, text in enumerate(texts)
    ]
    return ChatCompletion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=choices,
        usage=total_usage(states),
    )


def _chunk(
    meta: ReplyMeta, index: int, delta: ChoiceDelta, reason: FinishReason | None = None
) -> bytes:
    chunk = ChatCompletionChunk(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=[ChunkChoice(index=index, delta=delta, finish_reason=reason)],
    )
    return chunk.model_dump_json().encode()
