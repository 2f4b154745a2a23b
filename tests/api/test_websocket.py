from __future__ import annotations

import json

from starlette.testclient import TestClient

from tests.api.fakes import FakeBackend

WS = "/v1/chat/completions/ws"
REQUEST = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


def receive_until_done(ws) -> list[str]:  # type: ignore[no-untyped-def]
    messages = []
    while (message := ws.receive_text()) != "[DONE]":
        messages.append(message)
    return messages


def test_same_chunks_as_sse_and_several_requests_per_connection(
    client: TestClient, backend: FakeBackend
) -> None:
    with client.websocket_connect(WS) as ws:
        for _ in range(2):
            ws.send_text(json.dumps({**REQUEST, "stream_options": {"include_usage": True}}))
            chunks = [json.loads(m) for m in receive_until_done(ws)]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks)
            text = "".join(
                c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
            )
            assert text == backend.reply
            assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_errors_are_error_objects_then_done(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        ws.send_text("{not json")
        (error,) = receive_until_done(ws)
        assert json.loads(error)["error"]["code"] == "invalid_json"
        ws.send_text(json.dumps({**REQUEST, "model": "nope"}))
        (error,) = receive_until_done(ws)
        assert json.loads(error)["error"]["code"] == "model_not_found"
        ws.send_text(json.dumps(REQUEST))
        assert receive_until_done(ws)


def test_disconnect_mid_stream_closes_the_backend_stream(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.reply = " ".join(["word"] * 200)
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps(REQUEST))
        ws.receive_text()
    client.get("/health/live")  # let the server side notice the close
    assert backend.closed_streams == len(backend.requests)
