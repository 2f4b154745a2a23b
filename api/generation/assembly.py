"""Turns backend chunks into the reply: stop handling, token counts, finish reason."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from api.backend.types import GenerationChunk, SamplingParams, TokenLogprob
from api.generation.stops import StopMatcher
from api.schemas.common import FinishReason, Usage


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
    # UTF-8 bytes of the text shown so far (kept only with log probabilities, to end them
    # where the text ends when a stop sequence cuts it).
    shown_bytes: int = 0

    def new_logprobs(self) -> list[TokenLogprob]:
        """The log probabilities received since the last call (for streamed chunks)."""
        fresh = self.logprobs[self.reported :]
        self.reported = len(self.logprobs)
        return fresh

    def end_logprobs_at_text(self) -> None:
        """Drop the log probabilities of tokens that lie wholly past the text shown (the
        tokens of a stop sequence, and any generated after it); never one already reported."""
        covered, keep = 0, 0
        for entry in self.logprobs:
            if covered >= self.shown_bytes:
                break
            covered += len(entry.token)
            keep += 1
        del self.logprobs[max(keep, self.reported) :]

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )


def finish_reason(state: ReplyState, params: SamplingParams) -> FinishReason:
    """``length`` only when max_tokens (or, for a default max_tokens, the context window) cut
    the reply; end-of-sequence or a stop is ``stop``."""
    if state.content_filtered:
        return "content_filter"
    if state.stopped_by_sequence:
        return "stop"
    if state.completion_tokens >= params.max_tokens:
        return "length"
    context = params.fit_context
    filled = context is not None and state.prompt_tokens + state.completion_tokens >= context
    return "length" if filled else "stop"


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
            # Tokens are counted up to the one that completes a stop sequence, on every path:
            # the engine streams one token per response and nothing after a stop is read.
            state.completion_tokens += chunk.completion_tokens
            state.logprobs.extend(chunk.logprobs)
            text = matcher.feed(chunk.text)
            state.stopped_by_sequence = matcher.stopped
            ended = matcher.stopped or chunk.final
            if chunk.final:
                text += matcher.flush()
            if text := _shown(text, state, params, ended):
                yield text
            if ended:
                break
        else:
            if tail := _shown(matcher.flush(), state, params, ended=True):
                yield tail
        state.finished = True
    finally:
        await chunks.aclose()


def _shown(text: str, state: ReplyState, params: SamplingParams, ended: bool) -> str:
    """Account for ``text`` being shown; at the end, the log probabilities end with the text
    (a stop sequence's tokens, or an end-of-sequence token, reach past it) before the last
    text goes out, so streamed and collected replies carry the same entries."""
    if params.return_log_probs:
        state.shown_bytes += len(text.encode())
        if ended:
            state.end_logprobs_at_text()
    return text


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
