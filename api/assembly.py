"""Turns backend chunks into the reply: stop handling, token counts, finish reason."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from api.backend.types import GenerationChunk, SamplingParams, TokenLogprob
from api.schemas.common import FinishReason, Usage
from api.stops import StopMatcher


@dataclass(slots=True)
class ReplyState:
    """What has been generated so far for one choice."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    stopped_by_sequence: bool = False
    finished: bool = False
    # The content filter ended the reply (api/moderation/stream.py).
    content_filtered: bool = False
    # Per-token log probabilities, when requested; ``reported`` of them were streamed already.
    logprobs: list[TokenLogprob] = field(default_factory=list)
    reported: int = 0

    def new_logprobs(self) -> list[TokenLogprob]:
        """The log probabilities received since the last call (for streamed chunks)."""
        fresh = self.logprobs[self.reported :]
        self.reported = len(self.logprobs)
        return fresh

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )


def finish_reason(state: ReplyState, params: SamplingParams) -> FinishReason:
    """``length`` only when max_tokens cut the reply; end-of-sequence or a stop is ``stop``."""
    if state.content_filtered:
        return "content_filter"
    if state.stopped_by_sequence:
        return "stop"
    return "length" if state.completion_tokens >= params.max_tokens else "stop"


async def text_deltas(
    chunks: AsyncGenerator[GenerationChunk, None], params: SamplingParams, state: ReplyState
) -> AsyncIterator[str]:
    """Yield the text to show, updating ``state``; stops pulling once a stop sequence is hit.

    Leaving the backend iterator early is what cancels the request in Triton.
    """
    matcher = StopMatcher(params.stop)
    try:
        async for chunk in chunks:
            if chunk.prompt_tokens is not None:
                state.prompt_tokens = chunk.prompt_tokens
            state.completion_tokens += chunk.completion_tokens
            state.logprobs.extend(chunk.logprobs)
            if text := matcher.feed(chunk.text):
                yield text
            if matcher.stopped:
                state.stopped_by_sequence = True
                break
            if chunk.final:
                break
        if tail := matcher.flush():
            yield tail
        state.finished = True
    finally:
        await chunks.aclose()


async def primed(
    source: AsyncGenerator[GenerationChunk, None],
) -> AsyncGenerator[GenerationChunk, None]:
    """Wait for the backend's first response before the HTTP response starts.

    Errors that Triton reports straight away (a prompt over the context length, a model that
    is not loaded) then get their own HTTP status instead of an error event after a 200.
    """
    try:
        first = await anext(source)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await source.aclose()
        raise

    async def replay() -> AsyncGenerator[GenerationChunk, None]:
        try:
            if first is not None:
                yield first
                if first.final:
                    return
            async for chunk in source:
                yield chunk
        finally:
            await source.aclose()

    return replay()
