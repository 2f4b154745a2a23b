"""Fuzzing the request bodies (hypothesis): whatever a client sends, never a 5xx.

schemathesis (test_openapi.py) explores what the OpenAPI document describes; this goes
outside it: valid requests with one field replaced by anything JSON can hold, huge numbers,
odd unicode, deep nesting, non-JSON bytes. Every answer is a 2xx or a 4xx in OpenAI's error
envelope.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
COMPLETION = {"model": "tiny-chat", "prompt": "Hi", "max_tokens": 4}
EMBEDDING = {"model": "all-minilm-l6-v2", "input": "hello"}
ROUTES = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": COMPLETION,
    "/v1/embeddings": EMBEDDING,
}
FIELDS = {
    "/v1/chat/completions": [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "n", "stop", "stream", "stream_options", "seed", "presence_penalty", "logit_bias",
        "response_format", "tools", "tool_choice", "user", "min_tokens", "top_k",
    ],
    "/v1/completions": [
        "model", "prompt", "max_tokens", "echo", "n", "stop", "stream", "suffix", "best_of",
        "logprobs", "seed", "temperature",
    ],
    "/v1/embeddings": ["model", "input", "encoding_format", "dimensions", "user"],
}  # fmt: skip
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

odd_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(["", "\x00", "🚀" * 50, "a" * 5000, "<|im_start|>", "\u202e", "NaN"])
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 2**31, 2**63, 2**64, 1e308, -1e308, 5e-324])
)
scalars = st.none() | st.booleans() | numbers | odd_text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def assert_clean(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert error["type"]


@pytest.mark.parametrize("route", sorted(ROUTES))
@FUZZ
@given(data=st.data())
def test_one_field_replaced_by_anything(client: TestClient, route: str, data: Any) -> None:
    field = data.draw(st.sampled_from(FIELDS[route]), label="field")
    body = {**ROUTES[route], field: data.draw(json_values, label="value")}
    assert_clean(client.post(route, json=body))


@pytest.mark.parametrize("route", sorted(ROUTES))
@FUZZ
@given(body=json_values)
def test_any_json_body(client: TestClient, route: str, body: Any) -> None:
    assert_clean(client.post(route, json=body))


@pytest.mark.parametrize("route", sorted(ROUTES))
@FUZZ
@given(
    raw=st.binary(max_size=200)
    | st.sampled_from(
        [b'{"model": NaN}', b'{"max_tokens": Infinity}', b"[" * 5000, b'{"a":1}{"b":2}']
    )
)
def test_bytes_that_are_not_json(client: TestClient, route: str, raw: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    assert_clean(client.post(route, content=raw, headers=headers))


@FUZZ
@given(depth=st.integers(min_value=1, max_value=3000))
def test_deeply_nested_messages(client: TestClient, depth: int) -> None:
    # Built as text: the json module itself cannot nest this deep.
    nested = '{"model": "tiny-chat", "messages": ' + "[" * depth + "]" * depth + "}"
    headers = {"Content-Type": "application/json"}
    assert_clean(client.post("/v1/chat/completions", content=nested, headers=headers))
