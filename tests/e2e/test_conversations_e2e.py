"""Conversations against the real stack: OpenAI's conversations and items through the
official SDK (openai 3.63.0), and the deprecated /messages replies from the stored history."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.conversations import Message
from openai.types.responses import ResponseFunctionToolCallItem

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def test_a_conversation_remembers_and_streams(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as client:
        conversation = client.post(
            "/v1/conversations",
            json={"model": "tiny-chat", "system_prompt": "You are a helpful assistant."},
        ).json()
        path = f"/v1/conversations/{conversation['id']}/messages"
        first = client.post(
            path, json={"content": "What is the capital of France?", "temperature": 0}
        )
        assert first.status_code == 200, first.text
        assert first.headers["deprecation"].startswith("@") and first.headers["sunset"]
        assert first.json()["content"].strip()
        assert first.json()["usage"]["prompt_tokens"] > 0
        with client.stream(
            "POST", path, json={"content": "And of Italy?", "stream": True, "max_tokens": 16}
        ) as response:
            assert response.status_code == 200
            frames = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert frames[-1] == "data: [DONE]"
        deltas = [json.loads(frame[6:]) for frame in frames[:-1]]
        text = "".join(
            d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"]
        )
        messages = client.get(path).json()["data"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert messages[-1]["content"] == text
        assert messages[-1]["status"] == "completed"
        # The same turns are the conversation's items, after its system message.
        items = client.get(
            f"/v1/conversations/{conversation['id']}/items", params={"order": "asc"}
        ).json()["data"]
        assert [item["role"] for item in items] == ["system", *[m["role"] for m in messages]]
        assert [item["id"] for item in items[1:]] == [m["id"] for m in messages]
        assert items[-1]["content"] == [{"type": "output_text", "text": text, "annotations": []}]


def test_a_streamed_reply_comes_token_by_token_and_is_stored_as_streamed(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    turn = {"content": "Tell me about the sea.", "temperature": 0, "max_tokens": 24}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as client:

        def conversation_path() -> str:
            created = client.post("/v1/conversations", json={"model": "tiny-chat"}).json()
            return f"/v1/conversations/{created['id']}/messages"

        unstreamed = client.post(conversation_path(), json=turn).json()
        path = conversation_path()
        with client.stream("POST", path, json={**turn, "stream": True}) as response:
            assert response.status_code == 200
            deltas = [
                json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")
            ]
        texts = [d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"]]
        stored = client.get(path, params={"order": "desc", "limit": 1}).json()["data"][0]
    assert len([text for text in texts if text]) > 1  # token by token, not one chunk at the end
    assert stored["content"] == "".join(texts) == unstreamed["content"]
    assert stored["usage"] == unstreamed["usage"] == deltas[-1]["usage"]
    assert stored["status"] == unstreamed["status"] == "completed"


@pytest.fixture
def sdk(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0) as c:
        yield c


def other_organization(stack: Stack) -> openai.OpenAI:
    """An SDK client with an inference key of a new organization."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as admin:
        org = admin.post("/v1/admin/organizations", json={"name": f"rival-{time.time_ns()}"})
        assert org.status_code == 201, org.text
        key = admin.post("/v1/admin/keys", json={"org_id": org.json()["id"]})
        assert key.status_code == 201, key.text
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key.json()["key"], max_retries=0)


def test_the_sdk_conversations_and_items_round_trip(stack: Stack, sdk: openai.OpenAI) -> None:
    created = sdk.conversations.create(
        items=[
            {"role": "developer", "content": "Answer in one word."},
            {"type": "function_call", "call_id": "call_1", "name": "capital", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "Paris"},
        ],
        metadata={"suite": "e2e"},
    )
    assert sdk.conversations.retrieve(created.id) == created
    assert sdk.conversations.update(created.id, metadata={"suite": "sdk"}).metadata == {
        "suite": "sdk"
    }
    added = sdk.conversations.items.create(
        created.id, items=[{"role": "user", "content": "What is the capital of France?"}]
    )
    (question,) = added.data
    listed = sdk.conversations.items.list(created.id)
    assert [item.type for item in listed.data] == [
        "message", "function_call_output", "function_call", "message"
    ]  # fmt: skip
    assert listed.data[0].id == question.id and isinstance(listed.data[0], Message)
    call = listed.data[2]
    assert isinstance(call, ResponseFunctionToolCallItem) and call.name == "capital"
    assert sdk.conversations.items.retrieve(call.id, conversation_id=created.id) == call

    # The deprecated route answers from these items with the real model, and stores its reply.
    reply = sdk.post(
        f"/conversations/{created.id}/messages",
        body={"content": "Say it again.", "model": "tiny-chat", "max_tokens": 8},
        cast_to=httpx.Response,
    )
    assert reply.status_code == 200 and reply.headers["deprecation"]
    answer = sdk.conversations.items.list(created.id, limit=1).data[0]
    assert isinstance(answer, Message) and answer.role == "assistant"
    assert answer.content[0].text == reply.json()["content"]  # type: ignore[union-attr]

    after_delete = sdk.conversations.items.delete(call.id, conversation_id=created.id)
    assert after_delete.id == created.id
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(call.id, conversation_id=created.id)
    assert sdk.conversations.delete(created.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(created.id)


def test_another_organization_gets_404_for_every_conversation_and_item_id(
    stack: Stack, sdk: openai.OpenAI
) -> None:
    created = sdk.conversations.create(items=[{"role": "user", "content": "mine"}])
    item_id = str(sdk.conversations.items.list(created.id).data[0].id)
    cid = created.id
    with other_organization(stack) as rival:
        for call in (
            lambda: rival.conversations.retrieve(cid),
            lambda: rival.conversations.update(cid, metadata={"k": "v"}),
            lambda: rival.conversations.delete(cid),
            lambda: rival.conversations.items.create(cid, items=[{"role": "user", "content": "x"}]),
            lambda: rival.conversations.items.list(cid),
            lambda: rival.conversations.items.retrieve(item_id, conversation_id=cid),
            lambda: rival.conversations.items.delete(item_id, conversation_id=cid),
        ):
            with pytest.raises(openai.NotFoundError):
                call()
    assert [item.id for item in sdk.conversations.items.list(cid).data] == [item_id]
