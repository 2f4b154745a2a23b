from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from api.backend.types import GenerationChunk, GenerationRequest
from api.conversations.history import estimate_tokens, fit_history, shorter
from api.conversations.reply import chat_request
from api.errors import ContextLengthExceededError
from api.schemas.conversations import AppendMessage
from tests.api import asgi
from tests.api.fakes import FakeBackend
from tests.api.test_chat import sse_events as sse_payloads


@dataclass(frozen=True)
class T:
    role: str
    content: str


def new_conversation(client: TestClient, **fields: object) -> dict[str, object]:
    response = client.post("/v1/conversations", json={"model": "tiny-chat", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def messages_path(conversation: dict[str, object]) -> str:
    return f"/v1/conversations/{conversation['id']}/messages"


def newest_message(client: TestClient, path: str) -> dict[str, Any]:
    newest: dict[str, Any] = client.get(path, params={"order": "desc", "limit": 1}).json()["data"][
        0
    ]
    return newest


def say(
    client: TestClient, conversation_id: object, text: str, **options: object
) -> dict[str, object]:
    response = client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"content": text, **options}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def sent_messages(backend: FakeBackend) -> list[dict[str, str]]:
    raw = backend.requests[-1].messages_json
    assert raw is not None
    messages: list[dict[str, str]] = json.loads(raw)
    return messages


def test_create_retrieve_list_delete(client: TestClient) -> None:
    response = client.post(
        "/v1/conversations",
        json={"model": "tiny-chat", "system_prompt": "Be brief.", "metadata": {"k": "v"}},
    )
    created = response.json()
    # OpenAI's shape; the deprecated fields are kept, and said to be deprecated.
    assert set(created) == {"id", "object", "created_at", "metadata"}
    assert created["object"] == "conversation" and created["metadata"] == {"k": "v"}
    assert response.headers["deprecation"].startswith("@")
    assert response.headers["sunset"].endswith("GMT")
    (system,) = client.get(f"/v1/conversations/{created['id']}/items").json()["data"]
    assert (system["role"], system["content"]) == (
        "system",
        [{"type": "input_text", "text": "Be brief."}],
    )
    assert client.get(f"/v1/conversations/{created['id']}").json() == created
    second = new_conversation(client)
    listing = client.get("/v1/conversations", params={"limit": 1}).json()
    assert [item["id"] for item in listing["data"]] == [second["id"]]
    assert listing["has_more"]
    rest = client.get("/v1/conversations", params={"after": listing["last_id"]}).json()
    assert [item["id"] for item in rest["data"]] == [created["id"]]
    deleted = client.delete(f"/v1/conversations/{created['id']}").json()
    assert deleted == {"id": created["id"], "object": "conversation.deleted", "deleted": True}
    assert client.get(f"/v1/conversations/{created['id']}").status_code == 404


def test_unknown_model_is_refused(client: TestClient) -> None:
    response = client.post("/v1/conversations", json={"model": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_reply_comes_from_the_stored_history(client: TestClient, backend: FakeBackend) -> None:
    conversation = new_conversation(client, system_prompt="Be brief.")
    first = say(client, conversation["id"], "Hi")
    assert first["role"] == "assistant"
    assert first["content"] == backend.reply
    assert first["status"] == "completed"
    assert first["usage"] == {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    say(client, conversation["id"], "And then?", max_tokens=2)
    assert sent_messages(backend) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": backend.reply},
        {"role": "user", "content": "And then?"},
    ]
    assert backend.requests[-1].params.max_tokens == 2
    messages = client.get(f"/v1/conversations/{conversation['id']}/messages").json()["data"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hi"),
        ("assistant", backend.reply),
        ("user", "And then?"),
        ("assistant", "Hello there,"),
    ]


def test_messages_are_paginated_both_ways(client: TestClient) -> None:
    conversation = new_conversation(client)
    for text in ("one", "two"):
        say(client, conversation["id"], text)
    path = f"/v1/conversations/{conversation['id']}/messages"
    page = client.get(path, params={"limit": 3}).json()
    assert [m["content"] for m in page["data"]][::2] == ["one", "two"]
    assert page["has_more"]
    rest = client.get(path, params={"limit": 3, "after": page["last_id"]}).json()
    assert len(rest["data"]) == 1 and not rest["has_more"]
    newest = newest_message(client, path)
    assert newest["role"] == "assistant"
    assert client.get(path, params={"order": "sideways"}).status_code == 400


def test_streamed_reply_is_stored(client: TestClient, backend: FakeBackend) -> None:
    path = messages_path(new_conversation(client))
    with client.stream("POST", path, json={"content": "Hi", "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = sse_payloads(response.read().decode())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == backend.reply
    stored = newest_message(client, path)
    assert (stored["content"], stored["status"]) == (backend.reply, "completed")


def test_a_stream_that_fails_stores_what_was_generated(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail_after_chunks = 2
    path = messages_path(new_conversation(client))
    with client.stream("POST", path, json={"content": "Hi", "stream": True}) as response:
        response.read()
    stored = newest_message(client, path)
    assert (stored["content"], stored["status"]) == ("Hello there,", "incomplete")


def test_a_refused_request_stores_nothing(client: TestClient, backend: FakeBackend) -> None:
    conversation = new_conversation(client)
    backend.fail_before_first = ContextLengthExceededError("too long", param="messages")
    response = client.post(
        f"/v1/conversations/{conversation['id']}/messages", json={"content": "x"}
    )
    assert response.status_code == 400
    assert client.get(f"/v1/conversations/{conversation['id']}/messages").json()["data"] == []


@dataclass
class SmallContextBackend(FakeBackend):
    """Refuses prompts of more than ``max_messages`` messages, as Triton refuses long ones."""

    max_messages: int = 3

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if len(json.loads(request.messages_json or "[]")) > self.max_messages:
            raise ContextLengthExceededError("too long", param="messages")
        async for chunk in super().generate(request):
            yield chunk


def test_context_length_exceeded_drops_older_turns(client: TestClient) -> None:
    backend = SmallContextBackend()
    app: object = client.app
    app.state.services.backend = backend  # type: ignore[attr-defined]
    conversation = new_conversation(client)
    for text in ("a", "b", "c"):
        say(client, conversation["id"], text)
    # Five messages are refused; the newer half (three) is sent.
    assert [m["content"] for m in sent_messages(backend)] == ["b", backend.reply, "c"]


def test_other_organizations_get_404(client: TestClient) -> None:
    conversation = new_conversation(client)
    org = client.post("/v1/admin/organizations", json={"name": "rival"}).json()
    key = client.post("/v1/admin/keys", json={"org_id": org["id"]}).json()["key"]
    other = {"Authorization": f"Bearer {key}"}
    base = f"/v1/conversations/{conversation['id']}"
    assert client.get(base, headers=other).status_code == 404
    assert client.get(f"{base}/messages", headers=other).status_code == 404
    assert client.post(f"{base}/messages", headers=other, json={"content": "x"}).status_code == 404
    assert client.delete(base, headers=other).status_code == 404
    assert client.get("/v1/conversations", headers=other).json()["data"] == []
    # Still there for its own organization, with its messages.
    assert len(client.get(f"{base}/messages").json()["data"]) == 0
    assert client.get(base).status_code == 200


def test_truncation_keeps_the_newest_turns_that_fit() -> None:
    turns = [T("user", "x" * 400), T("assistant", "y" * 400), T("user", "z" * 40)]
    # Budget: 300 context - 100 reply - system (~3+4) leaves room for ~190 tokens.
    kept = fit_history("Be brief.", turns, context_length=300, max_tokens=100)
    assert kept == turns[1:]
    assert fit_history(None, turns, context_length=50, max_tokens=40) == turns[2:]
    assert fit_history(None, turns, context_length=4096, max_tokens=100) == turns
    assert estimate_tokens("abcd") == 1 + 4
    assert shorter(turns) == turns[1:]
    assert shorter(turns[:1]) is None


def test_replies_count_as_usage_of_the_conversations_model(client: TestClient) -> None:
    conversation = new_conversation(client)
    say(client, conversation["id"], "Hi")
    app: Any = client.app
    client.portal.call(app.state.gateway.recorder.flush)  # type: ignore[union-attr]
    usage = client.get("/v1/usage", params={"group_by": "model"}).json()
    tiny = [row for row in usage["data"] if row.get("model") == "tiny-chat"]
    assert tiny and tiny[0]["completion_tokens"] == 6


def test_a_client_that_leaves_mid_stream_leaves_an_incomplete_reply(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.chunk_delay_s = 0.05
    path = messages_path(new_conversation(client))
    body = json.dumps({"content": "Hi", "stream": True}).encode()
    sent = asgi.post(client, path, body, hang_up_after=1)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert backend.closed_streams == 1  # the stream was closed: Triton's request cancelled
    stored = newest_message(client, path)
    assert stored["status"] == "incomplete"
    assert stored["content"] and backend.reply.startswith(stored["content"])
    assert stored["content"] != backend.reply
    # The tokens generated before the client left are billed, as the stored usage says.
    app: Any = client.app
    client.portal.call(app.state.gateway.recorder.flush)  # type: ignore[union-attr]
    rows = client.get("/v1/usage", params={"group_by": "model"}).json()["data"]
    (chat,) = [row for row in rows if row.get("model") == "tiny-chat"]
    assert chat["completion_tokens"] == stored["usage"]["completion_tokens"] > 0


def test_a_streamed_reply_goes_out_token_by_token(client: TestClient, backend: FakeBackend) -> None:
    path = messages_path(new_conversation(client))
    body = json.dumps({"content": "Hi", "stream": True, "temperature": 0}).encode()
    sent = asgi.post(client, path, body)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    chunks = [json.loads(frame) for frame in sse_payloads(b"".join(bodies).decode())[:-1]]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    texts = [delta["content"] for delta in deltas if delta["content"]]
    pieces = backend.reply.split(" ")
    assert texts == [pieces[0], *(" " + piece for piece in pieces[1:])]
    assert len(bodies) >= len(pieces)  # one write per token, not one at the end
    assert backend.requests[-1].params.temperature == 0
    stored = newest_message(client, path)
    unstreamed = say(client, new_conversation(client)["id"], "Hi", temperature=0)
    assert stored["content"] == "".join(texts) == unstreamed["content"]


def test_the_chat_request_is_streamed_when_the_message_is() -> None:
    for stream in (False, True):
        body = AppendMessage(content="Hi", stream=stream)
        assert chat_request("tiny-chat", None, [T("user", "Hi")], body).stream is stream


def test_the_messages_routes_are_deprecated_and_show_the_items(
    client: TestClient, backend: FakeBackend
) -> None:
    conversation = new_conversation(client)
    path = messages_path(conversation)
    reply = client.post(path, json={"content": "Hi"})
    listed = client.get(path)
    refused = client.get(path, params={"order": "sideways"})
    for response in (reply, listed, refused):
        assert response.headers["deprecation"] == "@1796688000"  # 2026-12-08
        assert response.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
        assert 'rel="deprecation"' in response.headers["link"]
    items = client.get(f"/v1/conversations/{conversation['id']}/items", params={"order": "asc"})
    assert "deprecation" not in items.headers
    assert [(i["type"], i["role"], i["status"]) for i in items.json()["data"]] == [
        ("message", "user", "completed"),
        ("message", "assistant", "completed"),
    ]
    assert items.json()["data"][1]["content"] == [
        {"type": "output_text", "text": backend.reply, "annotations": []}
    ]
    assert [m["id"] for m in listed.json()["data"]] == [i["id"] for i in items.json()["data"]]


def test_a_conversation_without_a_model_needs_one_in_the_message(
    client: TestClient, backend: FakeBackend
) -> None:
    items = [
        {"role": "developer", "content": "Answer in French."},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"role": "user", "content": "Hi"},
    ]
    created = client.post("/v1/conversations", json={"items": items}).json()
    path = messages_path(created)
    missing = client.post(path, json={"content": "And?"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    answered = client.post(path, json={"content": "And?", "model": "tiny-chat"})
    assert answered.status_code == 200, answered.text
    # Instructions first, then the chat turns; the function call has no place in a chat prompt.
    assert sent_messages(backend) == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "And?"},
    ]
