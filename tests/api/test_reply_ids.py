"""Reply ids are ours and unique; the client's X-Request-ID only comes back in the header."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_chat import sse_events
from tests.api.test_conversations import messages_path, new_conversation

CLIENT_ID = "client-chosen-id"
HEADERS = {"X-Request-ID": CLIENT_ID}
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
COMPLETION = {"model": "tiny-chat", "prompt": "Once", "max_tokens": 2}
ROUTES = [
    ("/v1/chat/completions", CHAT, "chatcmpl-"),
    ("/v1/completions", COMPLETION, "cmpl-"),
]


def stream_ids(client: TestClient, path: str, body: dict[str, Any]) -> tuple[set[str], str]:
    with client.stream("POST", path, json={**body, "stream": True}, headers=HEADERS) as response:
        header = response.headers["x-request-id"]
        events = sse_events(response.read().decode())
    return {json.loads(event)["id"] for event in events[:-1]}, header


@pytest.mark.parametrize(("path", "body", "prefix"), ROUTES)
def test_same_client_request_id_gives_different_reply_ids(
    client: TestClient, path: str, body: dict[str, Any], prefix: str
) -> None:
    first, second = (client.post(path, json=body, headers=HEADERS) for _ in range(2))
    assert first.headers["x-request-id"] == second.headers["x-request-id"] == CLIENT_ID
    ids = [first.json()["id"], second.json()["id"]]
    assert ids[0] != ids[1]
    assert all(i.startswith(prefix) and CLIENT_ID not in i for i in ids)


@pytest.mark.parametrize(("path", "body", "prefix"), ROUTES)
def test_streamed_chunks_share_one_unique_id(
    client: TestClient, path: str, body: dict[str, Any], prefix: str
) -> None:
    (first,), header = stream_ids(client, path, body)
    (second,), _ = stream_ids(client, path, body)
    assert header == CLIENT_ID
    assert first != second and first.startswith(prefix) and CLIENT_ID not in first


def test_conversation_replies_get_their_own_ids(client: TestClient) -> None:
    path = messages_path(new_conversation(client))
    ids, header = stream_ids(client, path, {"content": "Hi"})
    again, _ = stream_ids(client, path, {"content": "Again"})
    assert header == CLIENT_ID
    assert len(ids) == len(again) == 1 and ids != again
    assert CLIENT_ID not in ids.pop()


def test_websocket_replies_get_their_own_ids(client: TestClient) -> None:
    with client.websocket_connect("/v1/chat/completions/ws", headers=HEADERS) as ws:
        seen = []
        for _ in range(2):
            ws.send_text(json.dumps({**CHAT, "stream": True}))
            while (message := ws.receive_text()) != "[DONE]":
                seen.append(json.loads(message)["id"])
    assert len(set(seen)) == 2
