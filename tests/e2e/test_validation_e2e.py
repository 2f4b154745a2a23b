"""Request validation against the real stack: 400s that name the parameter, seen by the SDK.

Also: the inputs that once failed inside Triton (an empty prompt, a token id outside the
vocabulary) answer properly, and none of them takes the model down for the next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

MODEL = "tiny-chat"
HI: list[Any] = [{"role": "user", "content": "Hi"}]
NOT_OPENAI = {"top_k", "min_tokens"}


@pytest.fixture
def sdk(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0) as c:
        yield c


def nested(objects: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(objects - 1):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


CHAT_CASES: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": 2**31}, "max_tokens"),
    ({"max_tokens": 5000}, "max_tokens"),
    ({"max_completion_tokens": 1024}, "max_completion_tokens"),
    ({"seed": -1}, "seed"),
    ({"top_k": 2**32}, "top_k"),
    ({"logit_bias": {"-1": 5}}, "logit_bias"),
    ({"logit_bias": {"\u0663": 5}}, "logit_bias"),
    ({"min_tokens": 20, "max_tokens": 10}, "min_tokens"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": [*HI, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
     "response_format"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": nested(120)}}]},
     "tools"),
    ({"response_format": {"type": "json_schema",
                          "json_schema": {"name": "x", "schema": nested(120)}}},
     "response_format"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"web_search_options": {}}, "web_search_options"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "param"), CHAT_CASES)
def test_sdk_sees_bad_chat_requests_as_400_with_the_param(
    sdk: openai.OpenAI, options: dict[str, Any], param: str
) -> None:
    options = dict(options)
    # Parameters OpenAI does not define travel in extra_body, as SDK users send them.
    extra = {key: options.pop(key) for key in list(options) if key in NOT_OPENAI}
    request: dict[str, Any] = {"model": MODEL, "messages": HI, **options}
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(**request, extra_body=extra or None)
    assert raised.value.status_code == 400
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"prompt": [[]]}, "prompt"),
        ({"prompt": [-1]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "Once", "max_tokens": 2**31}, "max_tokens"),
        ({"prompt": "Once", "max_tokens": 1024}, "max_tokens"),
        # Too long for the context: found inside Triton, named as the client sent it.
        ({"prompt": "word " * 1100, "max_tokens": 16}, "prompt"),
    ],
)
def test_sdk_sees_bad_legacy_requests_as_400_with_the_param(
    sdk: openai.OpenAI, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.completions.create(model=MODEL, **options)
    assert raised.value.param == param


def test_a_token_id_outside_the_vocabulary_is_400_from_the_model(sdk: openai.OpenAI) -> None:
    # The API does not know tiny-chat's vocabulary size; the model refuses the id itself.
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=HI, logit_bias={"1000000": 5})
    assert raised.value.param == "logit_bias"


@pytest.mark.parametrize("prompt", ["", [""]])
def test_an_empty_prompt_writes_from_the_start_of_a_document(
    sdk: openai.OpenAI, prompt: Any
) -> None:
    for _ in range(8):  # more than a breaker's failure threshold, had it failed
        completion = sdk.completions.create(model=MODEL, prompt=prompt, max_tokens=5, seed=1)
        assert completion.choices[0].finish_reason in ("stop", "length")
        assert completion.usage is not None and completion.usage.prompt_tokens == 1
    text = completion.choices[0].text
    streamed = sdk.completions.create(model=MODEL, prompt=prompt, max_tokens=5, seed=1, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == text


def test_bad_requests_leave_the_model_and_the_connection_usable(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    chat = {"model": MODEL, "messages": HI, "max_tokens": 3}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as http:
        first = http.post("/v1/chat/completions", json={**chat, "seed": -1})
        assert first.status_code == 400 and first.headers["x-request-id"]
        stream = first.extensions["network_stream"]
        for bad in (
            {**chat, "logit_bias": {"1000000": 1}},
            {**chat, "max_tokens": 2**31},
            {"model": MODEL, "prompt": "word " * 1100},
        ):
            route = "/v1/completions" if "prompt" in bad else "/v1/chat/completions"
            response = http.post(route, json=bad, headers={"X-Request-ID": "bad-1"})
            assert response.status_code == 400, response.text
            assert response.headers["x-request-id"] == "bad-1"
        ok = http.post("/v1/chat/completions", json=chat)
        assert ok.status_code == 200, ok.text
        assert ok.extensions["network_stream"] is stream
