from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.settings import Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH
from tests.api.test_auth import bearer, new_key

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


def test_a_request_streams_unless_it_says_otherwise(
    client: TestClient, backend: FakeBackend
) -> None:
    pieces = [f" {word}" if i else word for i, word in enumerate(backend.reply.split(" "))]
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps(REQUEST))
        chunks = [json.loads(m) for m in receive_until_done(ws)]
        ws.send_text(json.dumps({**REQUEST, "stream": False}))
        (whole,) = [json.loads(m) for m in receive_until_done(ws)]
        # stream_options needs stream, which a WebSocket request has by default.
        ws.send_text(json.dumps({**REQUEST, "stream_options": {"include_usage": True}}))
        with_usage = [json.loads(m) for m in receive_until_done(ws)]
    texts = [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]]
    assert [text for text in texts if text] == pieces  # one message per token
    assert whole["object"] == "chat.completion"
    assert whole["choices"][0]["message"]["content"] == "".join(pieces)
    assert whole["choices"][0]["finish_reason"] == chunks[-1]["choices"][0]["finish_reason"]
    assert with_usage[-1]["usage"] == whole["usage"]


def closed_after_error(ws) -> tuple[dict[str, object], dict[str, object]]:  # type: ignore[no-untyped-def]
    """The error object the server sent, then its close message."""
    error = json.loads(ws.receive_text())["error"]
    return error, ws.receive()


def test_a_binary_frame_is_answered_and_closes_with_1003(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        ws.send_bytes(json.dumps(REQUEST).encode())
        error, close = closed_after_error(ws)
    assert (error["code"], error["type"]) == ("unsupported_data", "invalid_request_error")
    assert close["type"] == "websocket.close" and close["code"] == 1003
    assert "Binary frames" in str(close["reason"])


def test_a_message_over_the_size_limit_closes_with_1009(
    tmp_path: Path, backend: FakeBackend
) -> None:
    app = create_app(Settings(max_request_bytes=300), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client, client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps(REQUEST))  # within the limit: answered, connection kept
        assert receive_until_done(ws)
        ws.send_text(json.dumps({**REQUEST, "user": "x" * 300}))
        error, close = closed_after_error(ws)
    assert error["code"] == "request_too_large"
    assert (close["code"], close["reason"]) == (1009, "The message exceeds 300 bytes.")
    assert len(backend.requests) == 1


def test_a_key_revoked_mid_connection_closes_with_1008(
    client: TestClient, backend: FakeBackend
) -> None:
    created = new_key(client, scopes=["inference"])
    user = TestClient(client.app, headers=bearer(created["key"]))
    with user.websocket_connect(WS) as ws:
        ws.send_text(json.dumps(REQUEST))
        assert receive_until_done(ws)
        assert client.delete(f"/v1/admin/keys/{created['id']}").status_code == 200
        ws.send_text(json.dumps(REQUEST))
        error, close = closed_after_error(ws)
    assert error["code"] == "invalid_api_key"
    assert close["code"] == 1008 and close["reason"]
    assert len(backend.requests) == 1


def test_a_handshake_without_a_key_is_closed_with_1008(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    with pytest.raises(WebSocketDisconnect) as closed, anonymous.websocket_connect(WS):
        pass
    assert closed.value.code == 1008
