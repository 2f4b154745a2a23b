"""Chat completion objects and chunks built from the assembled choices."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from api.backend.types import GenerationRequest
from api.generation.assembly import ReplyState, finish_reason
from api.generation.choices import ChunkStream, choice_events
from api.generation.chunk_templates import SplicedChunks
from api.generation.logprobs import chat_logprobs
from api.generation.tool_calls import forced_names
from api.generation.tool_stream import ParsedReply, Part, ToolCallSplitter
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


def prompt_token_count(states: Sequence[ReplyState], prompts: int = 1) -> int:
    """Prompt tokens of ``states`` (one per choice; ``prompts`` prompts x n, prompt-major):
    once per prompt of the request, a repeated prompt as often as it occurs; the choices of
    one prompt share its tokens."""
    per_prompt = len(states) // max(prompts, 1)
    return sum(state.prompt_tokens for state in states[::per_prompt])


def total_usage(states: Sequence[ReplyState], prompts: int = 1) -> Usage:
    """Prompt tokens count once per prompt (see ``prompt_token_count``), completions once
    per choice."""
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
    replies = [
        StreamedChoice(meta, index, request, state, contents)
        for index, (request, state) in enumerate(zip(requests, states, strict=True))
    ]
    async for event in choice_events(streams, requests, states):
        reply = replies[event.index]
        if event.text is None:
            for payload in reply.end():
                yield payload
        elif reply.plain:
            yield contents.encode(event.index, event.text)
        else:
            for payload in reply.text(event.text):
                yield payload
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


class StreamedChoice:
    """One choice's chunks: its text as it comes, tool calls once complete, log probabilities
    with the chunk that follows them (the finish chunk carries any left), so that the chunks
    join up to the JSON reply's message and logprobs."""

    def __init__(
        self,
        meta: ReplyMeta,
        index: int,
        request: GenerationRequest,
        state: ReplyState,
        contents: SplicedChunks,
    ) -> None:
        self._meta, self._index, self._request, self._state = meta, index, request, state
        self._contents = contents
        self._splitter = tool_splitter(request)
        self._calls = 0
        # Text only, no log probabilities: each token's chunk comes from the template.
        self.plain = self._splitter is None and not request.params.return_log_probs

    def text(self, text: str) -> list[bytes]:
        if self._splitter is None:
            return [self._content(text)]
        return self._parts(self._splitter.feed(text))

    def end(self) -> list[bytes]:
        payloads = self._parts(self._splitter.finish()) if self._splitter else []
        reason = reply_reason(self._state, self._request, self._calls > 0)
        # What is left, or an empty list for a reply that had none to stream (an empty
        # reply): the chunks then join up to the JSON reply's logprobs either way.
        left = self._state.logprobs[self._state.reported :]
        logprobs = self._logprobs() if left or self._state.reported == 0 else None
        return [*payloads, _chunk(self._meta, self._index, ChoiceDelta(), reason, logprobs)]

    def _parts(self, parts: Sequence[Part]) -> list[bytes]:
        payloads = []
        for part in parts:
            if isinstance(part, str):
                payloads.append(self._content(part))
                continue
            position, self._calls = self._calls, self._calls + 1
            function = part["function"]
            head = {"index": position, **part, "function": {**function, "arguments": ""}}
            arguments = {"index": position, "function": {"arguments": function["arguments"]}}
            # OpenAI's shape: the call's id and name with empty arguments, then the arguments.
            logprobs = self._logprobs()
            for delta in (ChoiceDelta(tool_calls=[head]), ChoiceDelta(tool_calls=[arguments])):
                payloads.append(_chunk(self._meta, self._index, delta, None, logprobs))
                logprobs = None
        return payloads

    def _content(self, text: str) -> bytes:
        if not self._request.params.return_log_probs:
            return self._contents.encode(self._index, text)
        delta = ChoiceDelta(content=text)
        return _chunk(self._meta, self._index, delta, None, self._logprobs())

    def _logprobs(self) -> dict[str, Any] | None:
        """The log probabilities not streamed yet (None unless they were asked for)."""
        if not self._request.params.return_log_probs:
            return None
        return chat_logprobs(self._state.new_logprobs(), self._request.params.top_logprobs)


def tool_splitter(request: GenerationRequest) -> ToolCallSplitter | None:
    """The splitter of a reply that may call tools; None when it may not."""
    if request.tools_json is None:
        return None
    names = forced_names(request.params.guide) if request.forced_tool_call else []
    return ToolCallSplitter(request.forced_tool_call, names)


def reply_reason(state: ReplyState, request: GenerationRequest, called: bool) -> FinishReason:
    """The finish reason, with OpenAI's for a reply that called tools: ``tool_calls``, or
    ``stop`` when ``tool_choice`` named the function; ``length`` (a call cut short) stays."""
    reason = finish_reason(state, request.params)
    if not called or reason != "stop":
        return reason
    return "stop" if request.named_tool_call else "tool_calls"


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
    parsed = ParsedReply(text, [])
    if (splitter := tool_splitter(request)) is not None:
        parsed = splitter.whole(text)
    message = AssistantMessage(content=parsed.content, tool_calls=parsed.tool_calls or None)
    return ChatChoice(
        index=index,
        message=message,
        logprobs=_choice_logprobs(state, request),
        finish_reason=reply_reason(state, request, bool(parsed.tool_calls)),
    )


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
