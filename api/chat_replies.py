"""Chat completion objects and chunks built from the assembled choices."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from api.assembly import ReplyState, finish_reason
from api.backend.types import GenerationRequest
from api.choices import ChunkStream, choice_events
from api.chunk_templates import SplicedChunks
from api.logprobs import chat_logprobs
from api.schemas.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
)
from api.schemas.common import FinishReason, Usage
from api.tool_calls import ParsedReply, parse_reply


@dataclass(frozen=True, slots=True)
class ReplyMeta:
    """The fields every object of one completion shares."""

    id: str
    created: int
    model: str
    system_fingerprint: str


def prompt_token_count(states: Sequence[ReplyState], prompts: int = 1) -> int:
    """Prompt tokens of ``states`` (one per choice), counted once per distinct prompt."""
    per_prompt = len(states) // max(prompts, 1)
    return sum(state.prompt_tokens for state in states[::per_prompt])


def total_usage(states: Sequence[ReplyState], prompts: int = 1) -> Usage:
    """Prompt tokens count once per distinct prompt, completions once per choice."""
    prompt_tokens = prompt_token_count(states, prompts)
    completion_tokens = sum(state.completion_tokens for state in states)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


class ChatChunks:
    """The parts of a streamed chat reply that do not depend on what the model writes: each
    choice's role chunk and the template of its per-token chunks (rendered once per choice,
    then only each token's text is encoded).

    ``render`` may run while Triton computes the first token (``begin_chat`` schedules it), so
    that the first token does not wait for them; whatever has not been rendered by the time it
    is needed is rendered then.
    """

    def __init__(self, meta: ReplyMeta, choices: int) -> None:
        self._meta = meta
        self._choices = choices
        self._roles: list[bytes] | None = None
        self.contents = SplicedChunks(
            lambda index, text: _chunk(meta, index, ChoiceDelta(content=text))
        )

    def render(self) -> None:
        if self._roles is None:
            role = ChoiceDelta(role="assistant", content="")
            self._roles = [_chunk(self._meta, index, role) for index in range(self._choices)]
            for index in range(self._choices):
                self.contents.prepare(index)

    def roles(self) -> list[bytes]:
        self.render()
        assert self._roles is not None
        return self._roles


async def chat_chunk_events(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    meta: ReplyMeta,
    include_usage: bool,
    states: Sequence[ReplyState],
    chunks: ChatChunks | None = None,
) -> AsyncGenerator[bytes, None]:
    """JSON payloads of ``chat.completion.chunk`` objects, in OpenAI's order."""
    chunks = chunks or ChatChunks(meta, len(streams))
    for role in chunks.roles():
        yield role
    contents = chunks.contents
    held = [""] * len(streams)  # replies that may hold tool calls wait for their end
    async for event in choice_events(streams, requests, states):
        request = requests[event.index]
        if event.text is None:
            reason = finish_reason(states[event.index], request.params)
            if request.tools_json is not None:
                parsed = parse_reply(held[event.index], request.forced_tool_call)
                for delta in _reply_deltas(parsed):
                    yield _chunk(meta, event.index, delta)
                reason = "tool_calls" if parsed.tool_calls else reason
            yield _chunk(meta, event.index, ChoiceDelta(), reason)
        elif request.tools_json is not None:
            held[event.index] += event.text
        elif request.params.return_log_probs:
            params = requests[event.index].params
            logprobs = chat_logprobs(states[event.index].new_logprobs(), params.top_logprobs)
            yield _chunk(meta, event.index, ChoiceDelta(content=event.text), None, logprobs)
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
        _chat_choice(index, text, states[index], requests[index])
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


def _chat_choice(
    index: int, text: str, state: ReplyState, request: GenerationRequest
) -> ChatChoice:
    reason = finish_reason(state, request.params)
    message = AssistantMessage(content=text)
    if request.tools_json is not None:
        parsed = parse_reply(text, request.forced_tool_call)
        message = AssistantMessage(content=parsed.content, tool_calls=parsed.tool_calls or None)
        reason = "tool_calls" if parsed.tool_calls else reason
    return ChatChoice(
        index=index,
        message=message,
        logprobs=_choice_logprobs(state, request),
        finish_reason=reason,
    )


def _reply_deltas(parsed: ParsedReply) -> list[ChoiceDelta]:
    """A finished reply as OpenAI streams it: text, then each call's head and its arguments."""
    deltas = [ChoiceDelta(content=parsed.content)] if parsed.content else []
    for position, call in enumerate(parsed.tool_calls):
        head = {**call, "index": position, "function": {**call["function"], "arguments": ""}}
        arguments = {"index": position, "function": {"arguments": call["function"]["arguments"]}}
        deltas += [ChoiceDelta(tool_calls=[head]), ChoiceDelta(tool_calls=[arguments])]
    return deltas


def _choice_logprobs(state: ReplyState, request: GenerationRequest) -> dict[str, Any] | None:
    if not request.params.return_log_probs:
        return None
    return chat_logprobs(state.logprobs, request.params.top_logprobs)


def _chunk(
    meta: ReplyMeta,
    index: int,
    delta: ChoiceDelta,
    reason: FinishReason | None = None,
    logprobs: dict[str, Any] | None = None,
) -> bytes:
    choice = ChunkChoice(index=index, delta=delta, finish_reason=reason, logprobs=logprobs)
    chunk = ChatCompletionChunk(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        system_fingerprint=meta.system_fingerprint,
        choices=[choice],
    )
    return chunk.model_dump_json().encode()
