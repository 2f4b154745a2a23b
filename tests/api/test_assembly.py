"""Assembly of backend chunks into a reply: stops, token counts, log probabilities."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from api.backend.types import GenerationChunk, SamplingParams, TokenLogprob
from api.generation.assembly import ReplyState, finish_reason, text_deltas

TOKENS = ["Hel", "lo", ",", " wor", "ld", "!", " More", " text"]


async def _stream(tokens: list[str]) -> AsyncGenerator[GenerationChunk, None]:
    """One chunk per token, as Triton streams them, each with its log probability."""
    for index, token in enumerate(tokens):
        yield GenerationChunk(
            text=token,
            prompt_tokens=5 if index == 0 else None,
            completion_tokens=1,
            logprobs=[TokenLogprob(token=token.encode(), logprob=-0.1 * index)],
        )
    yield GenerationChunk(final=True)


async def _assemble(params: SamplingParams) -> tuple[str, ReplyState]:
    state = ReplyState()
    text = "".join([delta async for delta in text_deltas(_stream(TOKENS), params, state)])
    return text, state


@pytest.mark.parametrize(
    ("stops", "text", "tokens"),
    [
        ((",",), "Hello", 3),
        (("wor",), "Hello, ", 4),
        # Held back over two tokens, then completed: counted through the completing token.
        ((", world",), "Hello", 5),
        # Overlapping stops: the earliest match in the text wins.
        (("lo, w", "o,"), "Hell", 3),
        (("nowhere",), "Hello, world! More text", 8),
    ],
)
async def test_stops_end_the_text_the_tokens_and_the_logprobs(
    stops: tuple[str, ...], text: str, tokens: int
) -> None:
    params = SamplingParams(max_tokens=50, stop=stops, return_log_probs=True)
    reply, state = await _assemble(params)
    assert reply == text
    assert state.completion_tokens == tokens
    # Log probabilities cover exactly the tokens the text reaches into.
    starts = [sum(len(token) for token in TOKENS[:index]) for index in range(len(TOKENS))]
    reached = [token for token, start in zip(TOKENS, starts, strict=True) if start < len(reply)]
    assert [entry.token.decode() for entry in state.logprobs] == reached
    assert finish_reason(state, params) == "stop"


async def test_logprobs_already_streamed_are_kept() -> None:
    state = ReplyState()
    params = SamplingParams(max_tokens=50, stop=(", world",), return_log_probs=True)
    async for _ in text_deltas(_stream(TOKENS), params, state):
        state.new_logprobs()  # as a streamed reply reports them with each delta
    assert len(state.logprobs) >= state.reported


def test_length_means_max_tokens_or_a_full_context() -> None:
    full = ReplyState(prompt_tokens=1000, completion_tokens=24)
    short = ReplyState(prompt_tokens=10, completion_tokens=24)
    assert finish_reason(full, SamplingParams(max_tokens=256, fit_context=1024)) == "length"
    assert finish_reason(short, SamplingParams(max_tokens=256, fit_context=1024)) == "stop"
    assert finish_reason(full, SamplingParams(max_tokens=256)) == "stop"
    assert finish_reason(short, SamplingParams(max_tokens=24)) == "length"


async def test_a_trailing_token_without_text_has_no_logprob() -> None:
    """An end-of-sequence id stopped as a stop word decodes to nothing: the text ends before
    it, and so do the log probabilities, streamed or not."""
    tokens = ["Hi", "!", ""]
    state = ReplyState()
    params = SamplingParams(max_tokens=50, return_log_probs=True)
    text = "".join([d async for d in text_deltas(_stream(tokens), params, state)])
    assert text == "Hi!"
    assert [entry.token for entry in state.logprobs] == [b"Hi", b"!"]
    assert state.completion_tokens == 3
