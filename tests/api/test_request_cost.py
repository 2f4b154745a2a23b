"""What a request may cost the engine, refused before Triton: the schema guided decoding
compiles (response_format, or the call tools force) and the prompt's bytes before tokenizing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.schemas.bounds import (
    MAX_GUIDE_BYTES,
    MAX_PROMPT_BYTES_PER_TOKEN,
    MAX_SCHEMA_ALTERNATIVES,
    MAX_SCHEMA_ENUM_VALUES,
    MAX_SCHEMA_PROPERTIES,
    schema_counts,
    text_bytes,
)
from api.settings import GuidedDecodingLimits, ModelKind, ServedModel, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HI = [{"role": "user", "content": "Hi"}]
CONTEXT = 1024


def refused(response: Any, param: str, code: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (
        param,
        code,
        "invalid_request_error",
    ), error
    return str(error["message"])


def tools_with(parameters: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": f"f{n}", "parameters": parameters}}
        for n in range(count)
    ]


def wide(properties: int, value: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema with ``properties`` optional properties."""
    value = value or {"type": "string"}
    return {"type": "object", "properties": {f"p{i}": value for i in range(properties)}}


def forced(tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "tiny-chat", "messages": HI, "tools": tools, "tool_choice": "required"}


def formatted(schema: dict[str, Any]) -> dict[str, Any]:
    spec = {"name": "out", "schema": schema}
    return {"model": "tiny-chat", "messages": HI, "response_format": {"type": "json_schema",
            "json_schema": spec}}  # fmt: skip


@pytest.fixture
def client(backend: FakeBackend) -> Iterator[TestClient]:
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


def model_client(backend: FakeBackend, **fields: Any) -> TestClient:
    model = ServedModel(id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble", **fields)
    return TestClient(
        create_app(Settings(models=[model]), backend_factory=lambda _: backend), headers=AUTH
    )


# --- schemas for guided decoding ----------------------------------------------------------------


def test_a_one_megabyte_forced_tool_schema_is_400_on_tools(
    client: TestClient, backend: FakeBackend
) -> None:
    # 128 tools of 60 described properties: ~1 MB, within the JSON bounds of the schema.
    described = {"type": "string", "description": "a detailed description " * 5}
    tools = tools_with(wide(60, described), 128)
    message = refused(client.post(CHAT, json=forced(tools)), "tools", "schema_too_complex")
    assert f"at most {MAX_GUIDE_BYTES} bytes" in message
    assert backend.requests == []


@pytest.mark.parametrize(
    ("schema", "what", "limit"),
    [
        (wide(MAX_SCHEMA_PROPERTIES + 1), "object properties", MAX_SCHEMA_PROPERTIES),
        ({"anyOf": [{"type": "integer"}] * (MAX_SCHEMA_ALTERNATIVES + 1)},
         "anyOf/oneOf/allOf branches", MAX_SCHEMA_ALTERNATIVES),
        (wide(100, {"type": ["string", "integer", "null"]}), "branches and type-list entries",
         MAX_SCHEMA_ALTERNATIVES),
        ({"enum": list(range(MAX_SCHEMA_ENUM_VALUES + 1))}, "enum and const values",
         MAX_SCHEMA_ENUM_VALUES),
    ],
)  # fmt: skip
def test_complex_schemas_are_400_on_their_parameter(
    client: TestClient, backend: FakeBackend, schema: dict[str, Any], what: str, limit: int
) -> None:
    message = refused(client.post(CHAT, json=formatted(schema)), "response_format",
                      "schema_too_complex")  # fmt: skip
    assert what in message and f"at most {limit}" in message
    message = refused(client.post(CHAT, json=forced(tools_with(schema))), "tools",
                      "schema_too_complex")  # fmt: skip
    assert what in message
    assert backend.requests == []


def test_only_the_forced_call_counts_not_tools_left_to_the_model(
    client: TestClient, backend: FakeBackend
) -> None:
    tools = tools_with(wide(40), 64)  # 2,560 properties over 64 tools
    auto = {**forced(tools), "tool_choice": "auto"}
    assert client.post(CHAT, json=auto).status_code == 200
    refused(client.post(CHAT, json=forced(tools)), "tools", "schema_too_complex")
    # A named function forces only its own schema.
    named = {**forced(tools), "tool_choice": {"type": "function", "function": {"name": "f3"}}}
    assert client.post(CHAT, json=named).status_code == 200
    assert backend.requests[-1].params.guide is not None


def test_schemas_at_the_limits_pass(client: TestClient, backend: FakeBackend) -> None:
    # 128 forced tools: 128 alternatives and 128 consts, 2 properties each plus their own.
    fits = tools_with(wide(13), 128)  # 1,920 properties
    assert client.post(CHAT, json=forced(fits)).status_code == 200
    guide = backend.requests[-1].params.guide
    assert guide is not None and len(guide.encode()) <= MAX_GUIDE_BYTES
    counts = schema_counts(orjson.loads(guide))
    assert (counts.properties, counts.alternatives, counts.enum_values) == (1920, 128, 128)
    refused(client.post(CHAT, json=forced(tools_with(wide(14), 128))), "tools",
            "schema_too_complex")  # fmt: skip


def test_the_limits_are_per_model_settings(backend: FakeBackend) -> None:
    limits = GuidedDecodingLimits(max_guide_bytes=60, max_properties=1)
    with model_client(backend, guided_decoding=limits) as tight:
        refused(tight.post(CHAT, json=formatted({"type": "string", "description": "x" * 60})),
                "response_format", "schema_too_complex")  # fmt: skip
        refused(tight.post(CHAT, json=formatted(wide(2))), "response_format",
                "schema_too_complex")  # fmt: skip
        assert tight.post(CHAT, json=formatted(wide(1))).status_code == 200


def test_counts_never_recurse_and_count_every_subschema() -> None:
    deep: Any = {"type": "string"}
    for _ in range(5000):
        deep = {"type": "object", "properties": {"a": deep}, "anyOf": [{"const": 1}]}
    counts = schema_counts(deep)
    assert (counts.properties, counts.alternatives, counts.enum_values) == (5000, 5000, 5000)


# --- the prompt's bytes -------------------------------------------------------------------------


LIMIT = CONTEXT * MAX_PROMPT_BYTES_PER_TOKEN


def test_a_chat_prompt_past_the_byte_limit_is_400_before_triton(
    client: TestClient, backend: FakeBackend
) -> None:
    big = [{"role": "user", "content": "é" * (LIMIT // 2)}]  # "user" tips it over
    message = refused(client.post(CHAT, json={"model": "tiny-chat", "messages": big}),
                      "messages", "context_length_exceeded")  # fmt: skip
    assert f"no prompt of more than {LIMIT} bytes" in message
    assert f"you sent {LIMIT + 4} bytes in the messages" in message
    assert backend.requests == []


def test_every_message_string_counts(client: TestClient) -> None:
    call = {"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "x" * LIMIT}}  # fmt: skip
    messages = [*HI, {"role": "assistant", "tool_calls": [call]}]
    refused(client.post(CHAT, json={"model": "tiny-chat", "messages": messages}),
            "messages", "context_length_exceeded")  # fmt: skip


@pytest.mark.parametrize("prompt", ["a" * (LIMIT + 1), ["short", "a" * (LIMIT + 1)]])
def test_a_completion_prompt_past_the_byte_limit_is_400(
    client: TestClient, backend: FakeBackend, prompt: Any
) -> None:
    message = refused(client.post(COMPLETIONS, json={"model": "tiny-chat", "prompt": prompt}),
                      "prompt", "context_length_exceeded")  # fmt: skip
    assert "bytes in the prompt" in message
    assert backend.requests == []


def test_prompts_within_the_byte_limit_reach_the_model(
    client: TestClient, backend: FakeBackend
) -> None:
    body = {"model": "tiny-chat", "prompt": "a" * LIMIT, "max_tokens": 1}
    assert client.post(COMPLETIONS, json=body).status_code == 200
    assert backend.requests[-1].prompt == "a" * LIMIT


def test_tools_count_where_the_model_renders_them(backend: FakeBackend) -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "d" * LIMIT}}]
    body = {"model": "tiny-chat", "messages": HI, "tools": tools}
    with model_client(backend) as plain:
        assert plain.post(CHAT, json=body).status_code == 200
    with model_client(backend, supports_tools=True) as rendering:
        refused(rendering.post(CHAT, json=body), "messages", "context_length_exceeded")
        assert rendering.post(CHAT, json={**body, "tool_choice": "none"}).status_code == 200


def test_the_byte_limit_is_a_per_model_setting(backend: FakeBackend) -> None:
    with model_client(backend, max_prompt_bytes=10) as tight:
        body = {"model": "tiny-chat", "prompt": "eleven byte"}
        message = refused(tight.post(COMPLETIONS, json=body), "prompt", "context_length_exceeded")
        assert "more than 10 bytes" in message
    assert text_bytes(["é", {"a": ("bc", 1)}]) == 4
