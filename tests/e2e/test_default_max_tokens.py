"""A chat request without ``max_tokens`` gets a budget that fits the context after its prompt
(as vLLM does), never a ``context_length_exceeded`` it did not ask for. Real Triton stack."""

from __future__ import annotations

import pytest

from tests.e2e import paths
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CONTEXT = 1024  # tiny-chat's context window (API_MODELS and the model's config.json)
DEFAULT_MAX_TOKENS = 128  # tiny-chat's default_max_tokens
# About 970 prompt tokens with the chat template: less room than the default budget.
LONG = "cat " * 960


def _chat(**options: object) -> dict[str, object]:
    return {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": LONG}],
        "temperature": 0,
        **options,
    }


def test_without_max_tokens_the_default_is_cut_to_the_context(stack: Stack) -> None:
    with paths.client(stack) as http:
        [reply] = paths.chat_json(http, _chat())
        assert reply.prompt_tokens is not None and reply.completion_tokens is not None
        room = CONTEXT - reply.prompt_tokens
        assert 0 < room < DEFAULT_MAX_TOKENS, (
            "the prompt no longer leaves less room than the default"
        )
        assert reply.completion_tokens <= room
        # Filling the context is a cut by length; ending earlier is the model's own stop.
        expected = "length" if reply.completion_tokens == room else "stop"
        assert reply.finish_reason == expected
        assert paths.chat_sse(http, _chat()) == [reply]


def test_an_explicit_max_tokens_that_does_not_fit_is_refused(stack: Stack) -> None:
    with paths.client(stack) as http:
        response = http.post("/v1/chat/completions", json=_chat(max_tokens=DEFAULT_MAX_TOKENS))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
