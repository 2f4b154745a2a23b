"""Bad input of every kind gets OpenAI's error envelope with OpenAI's status."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

CHAT = "/v1/chat/completions"


def assert_error(response_json: dict[str, object], code: str | None = None) -> dict[str, object]:
    error = response_json["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code
    return error


def test_malformed_json(client: TestClient) -> None:
    response = client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert_error(response.json(), "invalid_json")


def test_body_must_be_an_object(client: TestClient) -> None:
    response = client.post(CHAT, json=[1, 2])
    assert response.status_code == 400


def test_missing_messages(client: TestClient) -> None:
    response = client.post(CHAT, json={"model": "tiny-chat"})
    assert response.status_code == 400
    error = assert_error(response.json(), "missing_required_parameter")
    assert error["param"] == "messages"


def test_unknown_model_is_404(client: TestClient) -> None:
    response = client.post(
        CHAT, json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 404
    assert_error(response.json(), "model_not_found")


def test_embedding_model_on_chat_route_is_400(client: TestClient) -> None:
    body = {"model": "all-minilm-l6-v2", "messages": [{"role": "user", "content": "x"}]}
    response = client.post(CHAT, json=body)
    assert response.status_code == 400
    assert_error(response.json(), "model_not_supported")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny-chat", "messages": "hi"}, "messages"),
        ({"model": "tiny-chat", "messages": []}, "messages"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (
            {"model": "tiny-chat", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
        ),
        (
            {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            "temperature",
        ),
        (
            {"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
        ),
        (
            {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": "x"}],
                "stop": ["a"] * 5,
            },
            "stop",
        ),
    ],
)
def test_wrong_types_and_ranges(client: TestClient, body: dict[str, object], param: str) -> None:
    response = client.post(CHAT, json=body)
    assert response.status_code == 400
    error = assert_error(response.json())
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages[0].content",
            "unsupported_parameter",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice",
            "invalid_value",
        ),
    ],
)
def test_unsupported_options_are_refused_not_ignored(
    client: TestClient, extra: dict[str, object], param: str, code: str
) -> None:
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], **extra}
    response = client.post(CHAT, json=body)
    assert response.status_code == 400
    error = assert_error(response.json(), code)
    assert error["param"] == param


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    assert_error(client.get("/v1/nothing").json(), "not_found")
    response = client.get(CHAT)
    assert response.status_code == 405
    assert_error(response.json(), "method_not_allowed")


def test_request_too_large(client: TestClient) -> None:
    huge = "x" * (9 * 1024 * 1024)
    response = client.post(
        CHAT, json={"model": "tiny-chat", "messages": [{"role": "user", "content": huge}]}
    )
    assert response.status_code == 413
    assert_error(response.json(), "request_too_large")


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    response = client.get("/v1/models", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = client.get("/v1/models").headers["x-request-id"]
    assert len(generated) == 32
    unsafe = client.get("/v1/models", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
    assert unsafe != "a b\tc"
