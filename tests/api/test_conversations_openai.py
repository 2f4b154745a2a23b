"""``/v1/conversations`` and its items through the official ``openai`` SDK (3.63.0) against
the ASGI app: the SDK's own types parse every answer, and its errors carry our ``param``."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.conversations import Conversation, ConversationDeletedResource, Message
from openai.types.responses import (
    ResponseFunctionToolCallItem,
    ResponseFunctionToolCallOutputItem,
)
from starlette.testclient import TestClient

from tests.api.keys import TEST_KEY


def sdk_for(client: TestClient, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{client.base_url}/v1", http_client=client)


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    return sdk_for(client)


def rival_sdk(client: TestClient) -> openai.OpenAI:
    org = client.post("/v1/admin/organizations", json={"name": "rival"}).json()
    key = client.post("/v1/admin/keys", json={"org_id": org["id"]}).json()["key"]
    # The TestClient sends our key by default; the SDK's Authorization header replaces it.
    return sdk_for(client, key)


TOOL_TURN: list[Any] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
    {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": '{"sky": "blue"}'},
    {"role": "assistant", "content": "It is sunny."},
]


def test_the_sdk_creates_reads_updates_and_deletes(sdk: openai.OpenAI) -> None:
    created = sdk.conversations.create(items=TOOL_TURN, metadata={"topic": "weather"})
    assert isinstance(created, Conversation)
    assert created.id.startswith("conv_") and created.object == "conversation"
    assert created.metadata == {"topic": "weather"}
    assert sdk.conversations.retrieve(created.id) == created
    updated = sdk.conversations.update(created.id, metadata={"topic": "sky"})
    assert updated.metadata == {"topic": "sky"} and updated.created_at == created.created_at

    newest_first = sdk.conversations.items.list(created.id)
    assert [item.type for item in newest_first.data] == [
        "message", "function_call_output", "function_call", "message"
    ]  # fmt: skip
    user, call, output, answer = reversed(newest_first.data)
    assert isinstance(user, Message) and isinstance(answer, Message)
    assert user.id.startswith("msg_") and user.status == "completed"
    assert [(p.type, p.text) for p in user.content] == [("input_text", "Weather?")]  # type: ignore[union-attr]
    assert answer.role == "assistant" and answer.content[0].type == "output_text"
    assert isinstance(call, ResponseFunctionToolCallItem) and call.id.startswith("fc_")
    assert (call.call_id, call.name, call.arguments, call.status) == (
        "call_1", "weather", "{}", "completed"
    )  # fmt: skip
    assert isinstance(output, ResponseFunctionToolCallOutputItem)
    assert output.output == '{"sky": "blue"}' and output.call_id == "call_1"
    # first_id is in the wire list; the SDK's page type keeps it as an extra field.
    assert newest_first.model_dump()["first_id"] == answer.id
    assert newest_first.last_id == user.id
    assert not newest_first.has_more

    added = sdk.conversations.items.create(
        created.id,
        items=[{"type": "message", "role": "user", "content": "More?"}],
        include=["message.output_text.logprobs"],
    )
    (more,) = added.data
    assert added.first_id == added.last_id == more.id and not added.has_more
    page = sdk.conversations.items.list(created.id, order="asc", limit=2)
    assert [item.id for item in page.data] == [user.id, call.id] and page.has_more
    rest = sdk.conversations.items.list(created.id, order="asc", after=str(page.data[-1].id))
    assert [item.id for item in rest.data] == [output.id, answer.id, more.id]
    # The SDK's auto-pagination follows last_id.
    assert [item.id for item in sdk.conversations.items.list(created.id, limit=1)] == [
        more.id, answer.id, output.id, call.id, user.id
    ]  # fmt: skip

    assert sdk.conversations.items.retrieve(call.id, conversation_id=created.id) == call
    after_delete = sdk.conversations.items.delete(call.id, conversation_id=created.id)
    assert isinstance(after_delete, Conversation) and after_delete.id == created.id
    with pytest.raises(openai.NotFoundError) as gone:
        sdk.conversations.items.retrieve(call.id, conversation_id=created.id)
    assert gone.value.body["param"] == "item_id"  # type: ignore[index]

    deleted = sdk.conversations.delete(created.id)
    assert isinstance(deleted, ConversationDeletedResource)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        created.id, "conversation.deleted", True
    )  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(created.id)


def test_an_empty_conversation_and_client_ids(sdk: openai.OpenAI) -> None:
    empty = sdk.conversations.create()
    assert empty.metadata == {}
    listing = sdk.conversations.items.list(empty.id)
    assert listing.data == [] and not listing.has_more
    mine: Any = {"id": "msg_client_chosen", "type": "message", "role": "user", "content": "x"}
    (stored,) = sdk.conversations.items.create(empty.id, items=[mine]).data
    assert stored.id == "msg_client_chosen"
    with pytest.raises(openai.BadRequestError) as taken:
        sdk.conversations.items.create(empty.id, items=[mine | {"content": "y"}])
    assert taken.value.body["param"] == "items[0].id"  # type: ignore[index]


def bad_request(call: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as refused:
        call()
    assert refused.value.status_code == 400
    body: dict[str, Any] = refused.value.body  # type: ignore[assignment]
    assert body["type"] == "invalid_request_error"
    return body


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"role": "user", "content": "x"}] * 21, "items"),
        ([*TOOL_TURN[:3], {"role": "user", "content": 5}], "items[3].content"),
        ([{"role": "tool", "content": "x"}], "items[0].role"),
        ([{"type": "web_search_call", "id": "ws_1"}], "items[0].type"),
        ([{"type": "item_reference", "id": "msg_1"}], "items[0].type"),
        (
            [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}],
            "items[0].content[0].type",
        ),
        (
            [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
            "items[0].content[0].type",
        ),
        ([{"type": "function_call", "call_id": "c", "name": "f"}], "items[0].arguments"),
        ([{"type": "function_call_output", "call_id": "c", "output": 3}], "items[0].output"),
        ([{"role": "user", "content": "x", "status": "done"}], "items[0].status"),
        ([{"role": "user", "content": "x", "id": "m" * 65}], "items[0].id"),
        (["hello"], "items[0]"),
        ([{"content": "no role, no type"}], "items[0].type"),
    ],
)
def test_bad_items_are_refused_with_their_param(
    sdk: openai.OpenAI, items: list[Any], param: str
) -> None:
    assert bad_request(lambda: sdk.conversations.create(items=items))["param"] == param
    conversation = sdk.conversations.create()
    body = bad_request(lambda: sdk.conversations.items.create(conversation.id, items=items))
    assert body["param"] == param
    # Nothing of a refused request was stored.
    assert sdk.conversations.items.list(conversation.id).data == []


def test_bad_parameters_are_refused(sdk: openai.OpenAI, client: TestClient) -> None:
    conversation = sdk.conversations.create(items=TOOL_TURN)
    cid = conversation.id
    checks: list[tuple[Any, str]] = [
        (lambda: sdk.conversations.create(metadata={f"k{n}": "v" for n in range(17)}), "metadata"),
        (lambda: sdk.conversations.create(metadata={"k": "v" * 513}), "metadata.k"),
        (lambda: sdk.conversations.update(cid, metadata={"k": 1}), "metadata.k"),  # type: ignore[dict-item]
        (lambda: sdk.conversations.items.create(cid, items=[]), "items"),
        (lambda: sdk.conversations.items.list(cid, order="up"), "order"),  # type: ignore[arg-type]
        (lambda: sdk.conversations.items.list(cid, limit=101), "limit"),
        (lambda: sdk.conversations.items.list(cid, after="msg_nope"), "after"),
        (lambda: sdk.conversations.items.list(cid, include=["everything"]), "include"),  # type: ignore[list-item]
    ]
    for call, param in checks:
        assert bad_request(call)["param"] == param
    missing = client.post(f"/v1/conversations/{cid}", json={})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "metadata"
    # A metadata update to null clears it.
    assert client.post(f"/v1/conversations/{cid}", json={"metadata": None}).json()["metadata"] == {}


def test_another_organization_gets_404_for_every_id(client: TestClient, sdk: openai.OpenAI) -> None:
    conversation = sdk.conversations.create(items=TOOL_TURN[:1], metadata={"k": "v"})
    item_id = str(sdk.conversations.items.list(conversation.id).data[0].id)
    rival = rival_sdk(client)
    cid = conversation.id
    for call in (
        lambda: rival.conversations.retrieve(cid),
        lambda: rival.conversations.update(cid, metadata={"k": "stolen"}),
        lambda: rival.conversations.delete(cid),
        lambda: rival.conversations.items.create(cid, items=[{"role": "user", "content": "x"}]),
        lambda: rival.conversations.items.list(cid),
        lambda: rival.conversations.items.retrieve(item_id, conversation_id=cid),
        lambda: rival.conversations.items.delete(item_id, conversation_id=cid),
    ):
        with pytest.raises(openai.NotFoundError) as refused:
            call()
        assert refused.value.body["param"] == "conversation_id"  # type: ignore[index]
    # Untouched for its owner.
    assert sdk.conversations.retrieve(cid).metadata == {"k": "v"}
    assert [item.id for item in sdk.conversations.items.list(cid).data] == [item_id]
