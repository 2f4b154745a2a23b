from __future__ import annotations

import json

from starlette.testclient import TestClient

from api.errors import BackendUnavailableError, ContextLengthExceededError
from tests.api.fakes import FakeBackend

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


def sse_events(text: str) -> list[str]:
    frames = [frame for frame in text.split("\n\n") if frame]
    assert all(frame.startswith("data: ") for frame in frames)
    return [frame.removeprefix("data: ") for frame in frames]


def test_non_streaming_reply_and_usage(client: TestClient, backend: FakeBackend) -> None:
    response = client.post(CHAT, json=HELLO)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": backend.reply,
        "refusal": None,
        "tool_calls": None,
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    assert body["id"].startswith("chatcmpl-")


def test_max_tokens_cut_gives_length(client: TestClient) -> None:
    response = client.post(CHAT, json={**HELLO, "max_tokens": 2})
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "Hello there,"
    assert choice["finish_reason"] == "length"


def test_max_completion_tokens_wins(client: TestClient, backend: FakeBackend) -> None:
    client.post(CHAT, json={**HELLO, "max_tokens": 50, "max_completion_tokens": 3})
    assert backend.requests[-1].params.max_tokens == 3


def test_stop_sequence_is_not_leaked(client: TestClient, backend: FakeBackend) -> None:
    response = client.post(CHAT, json={**HELLO, "stop": [" how"]})
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "Hello there,"
    assert choice["finish_reason"] == "stop"
    assert backend.closed_streams == 1


def test_streaming_chunks_concatenate_and_end_with_done(
    client: TestClient, backend: FakeBackend
) -> None:
    payload = {**HELLO, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", CHAT, json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == backend.reply
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_error_before_first_token_keeps_its_status(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail_before_first = ContextLengthExceededError("too long", param="messages")
    response = client.post(CHAT, json={**HELLO, "stream": True})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_unavailable_backend_is_503_with_retry_after(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail_before_first = BackendUnavailableError("down", headers={"Retry-After": "1"})
    response = client.post(CHAT, json=HELLO)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_failure_mid_stream_ends_with_error_event_and_done(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail_after_chunks = 2
    with client.stream("POST", CHAT, json={**HELLO, "stream": True}) as response:
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])
    assert set(error["error"]) == {"message", "type", "param", "code"}


def test_developer_role_and_content_parts_reach_the_template(
    client: TestClient, backend: FakeBackend
) -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}],
        },
    ]
    assert client.post(CHAT, json={"model": "tiny-chat", "messages": messages}).status_code == 200
    sent = json.loads(backend.requests[-1].messages_json or "")
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi you"},
    ]


def test_unknown_fields_are_ignored(client: TestClient) -> None:
    response = client.post(CHAT, json={**HELLO, "some_future_option": {"x": 1}})
    assert response.status_code == 200


def test_n_choices_stream_and_not(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(CHAT, json={**HELLO, "n": 3}).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert all(c["message"]["content"] == backend.reply for c in body["choices"])
    assert body["usage"]["prompt_tokens"] == backend.prompt_tokens
    assert body["usage"]["completion_tokens"] == 18
    with client.stream("POST", CHAT, json={**HELLO, "n": 2, "stream": True}) as response:
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    for index in (0, 1):
        own = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert own[0]["delta"]["role"] == "assistant"
        assert "".join(c["delta"].get("content") or "" for c in own) == backend.reply
        assert own[-1]["finish_reason"] == "stop"


def test_failure_of_one_choice_before_start_closes_the_others(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail_before_first = ContextLengthExceededError("too long", param="messages")
    response = client.post(CHAT, json={**HELLO, "n": 3})
    assert response.status_code == 400
    assert backend.closed_streams == 3
