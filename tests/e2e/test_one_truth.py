"""One reply, however it travels: the same request at temperature 0 through every path (JSON,
SSE, WebSocket, legacy, ``n > 1``, echo, conversations, batch) gives the same text,
``finish_reason``, usage and log probabilities, cuts inside a multi-byte character and stop
sequences included. Against the real Triton stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e import paths
from tests.e2e.conftest import Stack
from tests.e2e.paths import Outcome

pytestmark = pytest.mark.e2e

MODEL = "tiny-chat"
PROMPTS = [
    "Send me a smiley.",
    "Say hello in one short sentence.",
    "What is the capital of France?",
    "Count from 1 to 10",
    "Write a haiku about AI.",
]
REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with paths.client(stack) as client:
        yield client


def _chat(prompt: str, **options: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        **options,
    }


def _assert_chat_paths_agree(stack: Stack, http: httpx.Client, body: dict[str, Any]) -> Outcome:
    [json_reply] = paths.chat_json(http, body)
    assert paths.chat_sse(http, body) == [json_reply]
    assert paths.chat_websocket(stack, body) == [json_reply]
    # Every choice of n > 1 at temperature 0 is the single reply (usage is per request there).
    for choice in paths.chat_json(http, {**body, "n": 2}):
        assert (choice.text, choice.finish_reason) == (json_reply.text, json_reply.finish_reason)
    return json_reply


def _full_reply(http: httpx.Client, prompt: str) -> str:
    [reply] = paths.chat_json(http, _chat(prompt, max_tokens=48))
    return reply.text


def test_a_cut_inside_a_character_ends_with_the_replacement_character(
    stack: Stack, http: httpx.Client
) -> None:
    """Every max_tokens over the smiley's reply: never an empty reply, the same on every path,
    and a cut inside the emoji's bytes ends in U+FFFD, as OpenAI's models do."""
    full = _full_reply(http, PROMPTS[0])
    assert any(ord(char) > 0xFFFF for char in full), f"the model's reply changed: {full!r}"
    cuts = []
    for max_tokens in range(1, 17):
        reply = _assert_chat_paths_agree(
            stack, http, _chat(PROMPTS[0], max_tokens=max_tokens, logprobs=True)
        )
        assert reply.completion_tokens == max_tokens or reply.finish_reason == "stop"
        assert reply.text, f"max_tokens={max_tokens} gave an empty reply"
        assert full.startswith(reply.text.rstrip(REPLACEMENT))
        cuts.append(reply.text.endswith(REPLACEMENT))
    assert any(cuts), "no max_tokens cut inside the multi-byte character"


@pytest.mark.parametrize("prompt", PROMPTS[1:3])
def test_legacy_completions_agree_on_every_path(http: httpx.Client, prompt: str) -> None:
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 12, "temperature": 0, "logprobs": 2}
    [reply] = paths.completion_json(http, body)
    assert paths.completion_sse(http, body) == [reply]
    echoed = paths.completion_json(http, {**body, "echo": True})
    assert echoed[0].text == prompt + reply.text
    for choice in paths.completion_json(http, {**body, "n": 3}):
        assert (choice.text, choice.finish_reason, choice.logprobs) == (
            reply.text,
            reply.finish_reason,
            reply.logprobs,
        )


def test_the_end_of_a_story_ends_the_reply(http: httpx.Client) -> None:
    """The model lists two end-of-sequence ids: generation stops at either."""
    body = {
        "model": MODEL,
        "prompt": "Tell me a story about a cat.",
        "max_tokens": 200,
        "temperature": 0,
    }
    [reply] = paths.completion_json(http, body)
    assert reply.finish_reason == "stop", reply
    assert reply.completion_tokens is not None and reply.completion_tokens < 200
    assert paths.completion_sse(http, body) == [reply]


@pytest.mark.parametrize("stream", [False, True])
def test_conversations_store_the_reply_the_chat_gives(http: httpx.Client, stream: bool) -> None:
    for max_tokens in (4, 9):
        body = _chat(PROMPTS[0], max_tokens=max_tokens)
        [expected] = paths.chat_json(http, body)
        reply = paths.conversation(http, body, stream)
        assert reply.text == expected.text
        assert reply.completion_tokens in (None, expected.completion_tokens)


def test_batch_lines_give_the_same_replies(http: httpx.Client) -> None:
    chats = [_chat(PROMPTS[0], max_tokens=n, logprobs=True) for n in (3, 8)]
    chats.append(_chat(PROMPTS[2], max_tokens=20, stop=["Paris"]))
    for body, result in zip(chats, paths.batch(http, "/v1/chat/completions", chats), strict=True):
        [expected] = paths.chat_json(http, body)
        choice = result["choices"][0]
        assert choice["message"]["content"] == expected.text
        assert choice["finish_reason"] == expected.finish_reason
        assert result["usage"]["completion_tokens"] == expected.completion_tokens
        assert paths.chat_logprobs(choice) == expected.logprobs
    legacy = [{"model": MODEL, "prompt": PROMPTS[1], "max_tokens": 7, "temperature": 0}]
    [result] = paths.batch(http, "/v1/completions", legacy)
    [expected] = paths.completion_json(http, legacy[0])
    assert result["choices"][0]["text"] == expected.text


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    prompt=st.sampled_from(PROMPTS),
    max_tokens=st.integers(min_value=1, max_value=24),
    start=st.integers(min_value=0, max_value=30),
    width=st.integers(min_value=1, max_value=4),
    logprobs=st.booleans(),
)
def test_stops_and_cuts_agree_on_every_path(
    stack: Stack,
    http: httpx.Client,
    prompt: str,
    max_tokens: int,
    start: int,
    width: int,
    logprobs: bool,
) -> None:
    """A stop drawn from the reply itself (so it is hit) or past its end (so it is not)."""
    full = _full_reply(http, prompt)
    stop = full[start : start + width] or "\u2603"
    body = _chat(prompt, max_tokens=max_tokens, stop=[stop], logprobs=logprobs)
    reply = _assert_chat_paths_agree(stack, http, body)
    assert stop not in reply.text
    assert reply.completion_tokens is not None and reply.completion_tokens <= max_tokens
    hit = full.find(stop) == len(reply.text) and reply.finish_reason == "stop"
    if logprobs and hit and REPLACEMENT not in reply.text:
        # The log probabilities end where the text ends: every token reaches into the text.
        assert reply.logprobs is not None
        raw = [token for token, _ in reply.logprobs]
        assert all(isinstance(token, bytes) for token in raw)
        text = reply.text.encode()
        assert b"".join(raw).startswith(text)  # type: ignore[arg-type]
        assert len(b"".join(raw[:-1])) < len(text) if text else not raw  # type: ignore[arg-type]
    # The legacy path with the same stop agrees with itself streamed.
    legacy = {
        "model": MODEL,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stop": [stop],
    }
    assert paths.completion_sse(http, legacy) == paths.completion_json(http, legacy)
