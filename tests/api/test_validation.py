"""Request validation: every bad input is a 400 naming the parameter the client sent.

Bounded numbers (the engine's INT32/UINT64 tensors and the model's context), bounded JSON
depth and size, OpenAI's consistency rules and the parameters this deployment refuses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from api.app import create_app
from api.schemas.bounds import MAX_JSON_DEPTH, MAX_JSON_VALUES, check_json_bounds
from api.schemas.chat import ChatCompletionRequest
from api.schemas.completions import CompletionRequest
from api.settings import ModelKind, ServedModel, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HI = [{"role": "user", "content": "Hi"}]
CHAT_BODY: dict[str, Any] = {"model": "tiny-chat", "messages": HI}
LEGACY_BODY: dict[str, Any] = {"model": "tiny-chat", "prompt": "Once"}
INT32_MAX = 2**31 - 1
WEATHER = {"type": "function", "function": {"name": "get_weather"}}


def refused(response: Any, param: str, code: str = "invalid_value") -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (
        param,
        code,
        "invalid_request_error",
    ), error
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


def nested(objects: int) -> dict[str, Any]:
    """A JSON Schema of ``objects`` nested object schemas: two JSON levels each."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(objects - 1):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def arrays(depth: int) -> Any:
    """``depth`` nested JSON arrays."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# --- A. numbers bounded by the engine's tensors and the model ---------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"max_tokens": 2**64 + 5}, "max_tokens"),
        ({"max_completion_tokens": 2**31}, "max_completion_tokens"),
        ({"top_k": 2**31}, "top_k"),
        ({"top_k": -2}, "top_k"),
        ({"seed": -1}, "seed"),
        ({"seed": -(2**63)}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"min_tokens": 2**31}, "min_tokens"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"n": 17}, "n"),
        ({"repetition_penalty": 1e39}, "repetition_penalty"),
        ({"logit_bias": {"5": 100.5}}, "logit_bias"),
    ],
)
def test_chat_numbers_outside_the_engine_are_400(
    client: TestClient, backend: FakeBackend, extra: dict[str, Any], param: str
) -> None:
    refused(client.post(CHAT, json={**CHAT_BODY, **extra}), param)
    assert backend.requests == []


@pytest.mark.parametrize(
    "key", ["-1", "+5", " 5", "5 ", "1e3", "0x10", "\u0663", "\uff15", "", "5.0", str(2**31)]
)
def test_logit_bias_keys_must_be_plain_token_ids(client: TestClient, key: str) -> None:
    refused(client.post(CHAT, json={**CHAT_BODY, "logit_bias": {key: 1}}), "logit_bias")


def test_numbers_at_their_bounds_pass_unwrapped(client: TestClient, backend: FakeBackend) -> None:
    body = {**CHAT_BODY, "seed": 2**64 - 1, "top_k": INT32_MAX, "logit_bias": {str(INT32_MAX): 1}}
    assert client.post(CHAT, json=body).status_code == 200
    params = backend.requests[-1].params
    assert (params.seed, params.top_k) == (2**64 - 1, INT32_MAX)
    assert params.logit_bias == ((INT32_MAX, 1.0),)
    assert client.post(CHAT, json={**CHAT_BODY, "seed": 0, "top_k": -1}).status_code == 200
    assert backend.requests[-1].params.seed == 0


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        (CHAT, {**CHAT_BODY, "max_tokens": 1024}, "max_tokens"),
        (CHAT, {**CHAT_BODY, "max_completion_tokens": 5000}, "max_completion_tokens"),
        (CHAT, {**CHAT_BODY, "max_tokens": 9, "max_completion_tokens": 2000},
         "max_completion_tokens"),
        (COMPLETIONS, {**LEGACY_BODY, "max_tokens": 1024}, "max_tokens"),
        (COMPLETIONS, {**LEGACY_BODY, "max_tokens": INT32_MAX}, "max_tokens"),
    ],
)  # fmt: skip
def test_max_tokens_over_the_models_context_is_400(
    client: TestClient, backend: FakeBackend, route: str, body: dict[str, Any], param: str
) -> None:
    message = refused(client.post(route, json=body), param)
    assert "1024" in message and "context" in message
    assert backend.requests == []


def test_max_tokens_that_fits_the_context_passes(client: TestClient) -> None:
    assert client.post(CHAT, json={**CHAT_BODY, "max_tokens": 1023}).status_code == 200
    assert client.post(COMPLETIONS, json={**LEGACY_BODY, "max_tokens": 1023}).status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (CHAT, {**CHAT_BODY, "min_tokens": 9, "max_tokens": 8}),
        (CHAT, {**CHAT_BODY, "min_tokens": 9, "max_completion_tokens": 8}),
        # Over the model's default budget (128 for tiny-chat) when no max_tokens is sent.
        (CHAT, {**CHAT_BODY, "min_tokens": 500}),
        (COMPLETIONS, {**LEGACY_BODY, "min_tokens": 17}),
    ],
)
def test_min_tokens_above_the_budget_is_400(
    client: TestClient, route: str, body: dict[str, Any]
) -> None:
    refused(client.post(route, json=body), "min_tokens")


@pytest.mark.parametrize(
    "prompt",
    [[-1], [2**31], [1, -5], [[]], [[1], []], [[1, [2]]], [1.5], [True], ["a", 1], [[1], "a"], {}],
)
def test_malformed_token_prompts_are_400_on_prompt(client: TestClient, prompt: Any) -> None:
    refused(client.post(COMPLETIONS, json={**LEGACY_BODY, "prompt": prompt}), "prompt")


@pytest.mark.parametrize("prompt", [[1, 2], [[1], [2, 3]]])
def test_well_formed_token_prompts_are_refused_as_unsupported(
    client: TestClient, prompt: Any
) -> None:
    response = client.post(COMPLETIONS, json={**LEGACY_BODY, "prompt": prompt})
    refused(response, "prompt", "unsupported_parameter")


def test_non_finite_floats_never_validate() -> None:
    # JSON cannot carry them; a body built in Python (a batch line, a conversation) must not.
    for extra in (
        {"temperature": math.nan},
        {"top_p": math.nan},
        {"presence_penalty": math.inf},
        {"repetition_penalty": math.inf},
        {"logit_bias": {"5": math.nan}},
    ):
        with pytest.raises(ValidationError):
            ChatCompletionRequest.model_validate({**CHAT_BODY, **extra})


@pytest.fixture
def known_vocab_client(backend: FakeBackend) -> Iterator[TestClient]:
    model = ServedModel(
        id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble", vocab_size=1971
    )
    app = create_app(Settings(models=[model]), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


def test_logit_bias_ids_outside_a_known_vocabulary_are_400(
    known_vocab_client: TestClient, backend: FakeBackend
) -> None:
    response = known_vocab_client.post(CHAT, json={**CHAT_BODY, "logit_bias": {"1971": 5}})
    assert "1971" in refused(response, "logit_bias")
    ok = known_vocab_client.post(CHAT, json={**CHAT_BODY, "logit_bias": {"1970": 5}})
    assert ok.status_code == 200
    assert backend.requests[-1].params.logit_bias == ((1970, 5.0),)


# --- B. depth and size of free-form JSON --------------------------------------------------------


def test_json_bounds_walk_without_recursion() -> None:
    check_json_bounds(arrays(MAX_JSON_DEPTH))
    check_json_bounds({"a": arrays(MAX_JSON_DEPTH - 1)})
    for too_deep in (arrays(MAX_JSON_DEPTH + 1), {"a": arrays(MAX_JSON_DEPTH)}, arrays(100_000)):
        with pytest.raises(ValueError, match="nested deeper"):
            check_json_bounds(too_deep)
    with pytest.raises(ValueError, match="more than"):
        check_json_bounds(list(range(MAX_JSON_VALUES)))


def _deep_tools(depth: int) -> dict[str, Any]:
    function = {"name": "f", "parameters": nested(depth)}
    return {"tools": [{"type": "function", "function": function}]}


def _deep_format(depth: int) -> dict[str, Any]:
    spec = {"name": "x", "schema": nested(depth)}
    return {"response_format": {"type": "json_schema", "json_schema": spec}}


# 33 schema objects pass the limit; 120 are 239 levels, near what the serializer can write.
@pytest.mark.parametrize("depth", [33, 120])
@pytest.mark.parametrize(
    ("build", "param"),
    [
        (_deep_tools, "tools"),
        (_deep_format, "response_format"),
        (
            lambda d: {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {
                "name": "get_weather", "x": nested(d)}}},
            "tool_choice",
        ),
        (
            lambda d: {"messages": [*HI, {"role": "assistant", "tool_calls": [nested(d)]}]},
            "messages[1].tool_calls",
        ),
    ],
)  # fmt: skip
def test_deep_json_is_400_on_its_parameter(
    client: TestClient, backend: FakeBackend, build: Any, param: str, depth: int
) -> None:
    response = client.post(CHAT, json={**CHAT_BODY, **build(depth)})
    assert str(MAX_JSON_DEPTH) in refused(response, param)
    assert backend.requests == []


@pytest.mark.parametrize(
    ("field", "wrap"),
    [
        ("tools", '[{"type": "function", "function": {"name": "f", "parameters": %s}}]'),
        ("response_format", '{"type": "json_schema", "json_schema": {"name": "x", "schema": %s}}'),
    ],
)
def test_json_deeper_than_the_serializer_can_write_is_400(
    client: TestClient, field: str, wrap: str
) -> None:
    # ~1000 levels (the JSON parser takes 1024): written by hand, no encoder goes that deep.
    schema = '{"type": "object", "properties": {"a": ' * 498 + '{"type": "string"}' + "}}" * 498
    body = '{"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "%s": %s}'
    response = client.post(CHAT, content=body % (field, wrap % schema))
    refused(response, field)


@pytest.mark.parametrize(
    ("route", "template", "param"),
    [
        (COMPLETIONS, '{"model": "tiny-chat", "prompt": %s}', "prompt"),
        (CHAT, '{"model": "tiny-chat", "messages": [{"role": "user", "content": %s}]}',
         "messages[0].content"),
        (CHAT, '{"model": "tiny-chat", "messages": %s}', "messages[0]"),
    ],
)  # fmt: skip
def test_deep_prompts_are_400_before_anything_walks_them(
    client: TestClient, route: str, template: str, param: str
) -> None:
    # The key limits estimate a prompt's size before the route: they must not recurse either.
    deep = "[" * 1000 + "1" + "]" * 1000
    assert client.post(route, content=template % deep).json()["error"]["param"] == param


def test_json_within_the_bounds_passes(client: TestClient, backend: FakeBackend) -> None:
    # Inside the tools list and the tool definition: 30 nested schema objects still fit.
    assert client.post(CHAT, json={**CHAT_BODY, **_deep_tools(30)}).status_code == 200
    assert backend.requests[-1].tools_json is not None
    assert client.post(CHAT, json={**CHAT_BODY, **_deep_format(30)}).status_code == 200


def test_huge_tool_schemas_are_400(client: TestClient) -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(30_000)}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": wide}}]
    refused(client.post(CHAT, json={**CHAT_BODY, "tools": tools}), "tools")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": "f"}]}, "tools"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]}, "tools"),
        ({"tools": [WEATHER] * 129}, "tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": "f"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 1}}},
         "response_format"),
    ],
)  # fmt: skip
def test_malformed_tools_and_formats_are_400(
    client: TestClient, extra: dict[str, Any], param: str
) -> None:
    refused(client.post(CHAT, json={**CHAT_BODY, **extra}), param)


# --- C. OpenAI's consistency rules and refused parameters ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"tool_choice": "auto"}, "tool_choice", "invalid_value"),
        ({"tool_choice": "none"}, "tool_choice", "invalid_value"),
        ({"tools": [], "tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
        ({"stream": False, "stream_options": {}}, "stream_options", "invalid_value"),
        ({"top_logprobs": 2}, "top_logprobs", "invalid_value"),
        ({"top_logprobs": 0, "logprobs": False}, "top_logprobs", "invalid_value"),
        (
            {"messages": [*HI, {"role": "tool", "content": "18C"}]},
            "messages[1].tool_call_id",
            "missing_required_parameter",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format",
            "invalid_value",
        ),
        ({"functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
        ({"function_call": "auto"}, "function_call", "unsupported_parameter"),
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_parameter"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_parameter"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction",
         "unsupported_parameter"),
        ({"web_search_options": {}}, "web_search_options", "unsupported_parameter"),
    ],
)  # fmt: skip
def test_openai_consistency_rules(
    client: TestClient, backend: FakeBackend, extra: dict[str, Any], param: str, code: str
) -> None:
    refused(client.post(CHAT, json={**CHAT_BODY, **extra}), param, code)
    assert backend.requests == []


def test_the_same_fields_used_consistently_pass(client: TestClient) -> None:
    for extra in (
        {"tools": [WEATHER], "tool_choice": "auto"},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"stream_options": None, "top_logprobs": None, "tool_choice": None},
        {"logprobs": True, "top_logprobs": 2},
        {"modalities": ["text"], "functions": None, "audio": None},
        {"messages": [*HI, {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]},
    ):
        response = client.post(CHAT, json={**CHAT_BODY, **extra})
        # A named function that tools lack is translate's 400 on tool_choice, not the rule's.
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert "names no function" in response.json()["error"]["message"]


def test_stream_options_without_stream_on_legacy_completions(client: TestClient) -> None:
    body = {**LEGACY_BODY, "stream_options": {"include_usage": True}}
    refused(client.post(COMPLETIONS, json=body), "stream_options")


@pytest.mark.parametrize("prompt", ["", [""], ["", "Once"]])
def test_an_empty_prompt_is_valid(client: TestClient, backend: FakeBackend, prompt: Any) -> None:
    response = client.post(COMPLETIONS, json={**LEGACY_BODY, "prompt": prompt})
    assert response.status_code == 200, response.text
    assert backend.requests[0].prompt == ""


def test_an_empty_prompt_list_is_400(client: TestClient) -> None:
    refused(client.post(COMPLETIONS, json={**LEGACY_BODY, "prompt": []}), "prompt")


# --- D. the param is the field as the client sent it --------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        (CHAT, {**CHAT_BODY, "messages": [*HI, {"role": "robot"}]}, "messages[1].role"),
        (CHAT, {**CHAT_BODY, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (COMPLETIONS, {**LEGACY_BODY, "prompt": 5}, "prompt"),
        (COMPLETIONS, {**LEGACY_BODY, "logprobs": 6}, "logprobs"),
        (COMPLETIONS, {**LEGACY_BODY, "logit_bias": {"x": 1}}, "logit_bias"),
    ],
)
def test_param_is_the_path_the_client_sent(
    client: TestClient, route: str, body: dict[str, Any], param: str
) -> None:
    assert client.post(route, json=body).json()["error"]["param"] == param


def test_schema_rules_hold_outside_http_too() -> None:
    # The WebSocket route, batches and conversations validate with the same schemas.
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({**CHAT_BODY, "tool_choice": "auto"})
    with pytest.raises(ValidationError):
        CompletionRequest.model_validate({**LEGACY_BODY, "prompt": [[]]})
    # Only where `stream` decides (HTTP) is stream_options without stream refused.
    ChatCompletionRequest.model_validate({**CHAT_BODY, "stream_options": {}})
