"""Legacy ``text_completion`` objects and chunks built from the assembled choices."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from api.backend.types import GenerationRequest, SamplingParams
from api.chat.replies import ReplyMeta, total_usage
from api.generation.assembly import ReplyState, finish_reason
from api.generation.choices import ChunkStream, choice_events
from api.generation.chunk_templates import SplicedChunks
from api.generation.logprobs import completion_logprobs
from api.schemas.common import FinishReason
from api.schemas.completions import Completion, CompletionChoice


async def completion_chunk_events(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    meta: ReplyMeta,
    echo: bool,
    include_usage: bool,
    states: Sequence[ReplyState],
    prompts: int,
) -> AsyncGenerator[bytes, None]:
    """JSON payloads of streamed ``text_completion`` objects (``requests``: ``prompts`` x n,
    prompt-major; each prompt's tokens count once per occurrence, a repeated one too).

    With ``logprobs`` each chunk carries its own tokens' entries, ``text_offset`` counted
    through the whole choice (echoed prompt included), as OpenAI streams them.
    """
    offsets = [len(request.prompt or "") if echo else 0 for request in requests]
    if echo:
        for index, request in enumerate(requests):
            yield _chunk(meta, index, request.prompt or "")
    texts = SplicedChunks(lambda index, text: _chunk(meta, index, text))
    async for event in choice_events(streams, requests, states):
        params = requests[event.index].params
        if event.text is None:
            reason = finish_reason(states[event.index], params)
            yield _chunk(
                meta,
                event.index,
                "",
                reason,
                _finish_logprobs(states[event.index], params, offsets[event.index]),
            )
        elif params.return_log_probs:
            entries = states[event.index].new_logprobs()
            logprobs = completion_logprobs(entries, params.top_logprobs, offsets[event.index])
            offsets[event.index] += len(event.text)
            yield _chunk(meta, event.index, event.text, logprobs=logprobs)
        else:
            yield texts.encode(event.index, event.text)
    if include_usage:
        usage = Completion(
            id=meta.id,
            created=meta.created,
            model=meta.model,
            system_fingerprint=meta.system_fingerprint,
            choices=[],
            usage=total_usage(states, prompts),
        )
        yield usage.model_dump_json().encode()


async def collect_completion(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    meta: ReplyMeta,
    echo: bool,
    states: Sequence[ReplyState],
    prompts: int,
) -> Completion:
    texts = [(request.prompt or "") if echo else "" for request in requests]
    async for event in choice_events(streams, requests, states):
        if event.text is not None:
            texts[event.index] += event.text
    choices = [
        CompletionChoice(
            text=text,
            index=index,
            logprobs=_choice_logprobs(states[index], requests[index], echo),
            finish_reason=finish_reason(states[index], requests[index].params),
        )
        for index, text in enumerate(texts)
    ]
    return Completion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=choices,
        usage=total_usage(states, prompts),
    )


def _finish_logprobs(
    state: ReplyState, params: SamplingParams, offset: int
) -> dict[str, Any] | None:
    """The finish chunk's log probabilities: those not streamed yet, or empty lists for a
    reply that had none to stream, so that the chunks join up to the JSON reply's."""
    if not params.return_log_probs or (state.reported and not state.logprobs[state.reported :]):
        return None
    return completion_logprobs(state.new_logprobs(), params.top_logprobs, offset)


def _choice_logprobs(
    state: ReplyState, request: GenerationRequest, echo: bool
) -> dict[str, Any] | None:
    if not request.params.return_log_probs:
        return None
    offset = len(request.prompt or "") if echo else 0
    return completion_logprobs(state.logprobs, request.params.top_logprobs, offset)


def _chunk(
    meta: ReplyMeta,
    index: int,
    text: str,
    reason: FinishReason | None = None,
    logprobs: dict[str, Any] | None = None,
) -> bytes:
    choice = CompletionChoice(text=text, index=index, logprobs=logprobs, finish_reason=reason)
    chunk = Completion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=[choice],
    )
    return chunk.model_dump_json(exclude={"usage"}).encode()
