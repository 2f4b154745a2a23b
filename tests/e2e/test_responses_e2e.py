"""The Responses API through the official ``openai`` SDK (3.63.0, unmodified) against the real
Triton stack: create (JSON and streamed), previous_response_id, conversations, a function tool
round trip, text.format json_schema, retrieve/delete/cancel/input_items, background runs,
input token counts, and another organization's 404s."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

MODEL = "tiny-chat"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 24}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0, timeout=120
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def stranger(stack: Stack) -> Iterator[openai.OpenAI]:
    """A key of another organization."""
    admin = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=admin, timeout=30) as http:
        org = http.post("/v1/admin/organizations", json={"name": "responses-other"}).json()
        key = http.post("/v1/admin/keys", json={"org_id": org["id"]}).json()["key"]
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


def test_create_plain(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Say hello.", instructions="Be brief.", max_output_tokens=16
    )
    assert response.object == "response" and response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 16
    total = response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.total_tokens == total


def test_create_streamed_event_sequence(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL, input="Count to five.", max_output_tokens=12, temperature=0, stream=True
        )
    )
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == deltas
    # The same reply as JSON at temperature 0.
    again = client.responses.create(
        model=MODEL, input="Count to five.", max_output_tokens=12, temperature=0
    )
    assert again.output_text == deltas


def test_previous_response_id_and_input_items(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="My name is Ada.", max_output_tokens=8)
    second = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=8
    )
    assert second.previous_response_id == first.id
    items = client.responses.input_items.list(second.id, order="asc")
    texts = [item.content[0].text for item in items.data if item.type == "message"]  # type: ignore[union-attr]
    assert texts[0] == "My name is Ada." and texts[-1] == "What is my name?"
    assert len(items.data) == 3  # the first input, its reply, the new input
    assert client.responses.retrieve(second.id).output_text == second.output_text


def test_function_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL,
        input="What's the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        # Room for the whole call (the city is at most 24 characters): a cut one is incomplete.
        max_output_tokens=256,
        temperature=0,
    )
    assert first.status == "completed"
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.call_id
    assert isinstance(json.loads(call.arguments), dict)
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=16,
    )
    assert second.status in ("completed", "incomplete")
    assert second.output


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 20}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=MODEL,
        input="Answer in JSON.",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
        max_output_tokens=40,
        temperature=0,
    )
    assert set(json.loads(response.output_text)) == {"answer"}


def test_retrieve_delete_and_not_found(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    assert client.responses.retrieve(response.id).id == response.id
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_background_polled_to_completion(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Tell me a story.", background=True, max_output_tokens=24
    )
    assert response.background is True and response.status in ("queued", "in_progress")
    deadline = time.monotonic() + 120
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.2)
        response = client.responses.retrieve(response.id)
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    replay = list(client.responses.retrieve(response.id, stream=True, starting_after=1))
    assert replay[0].sequence_number == 2
    assert replay[-1].type in ("response.completed", "response.incomplete")


def test_background_cancel(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Count to a thousand.", background=True, max_output_tokens=900
    )
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status in ("cancelled", "completed", "incomplete")
    time.sleep(1)
    assert client.responses.retrieve(response.id).status == cancelled.status


def test_conversation(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    client.responses.create(
        model=MODEL, input="My name is Ada.", conversation=conversation.id, max_output_tokens=8
    )
    second = client.responses.create(
        model=MODEL, input="And my name?", conversation=conversation.id, max_output_tokens=8
    )
    assert second.conversation is not None and second.conversation.id == conversation.id
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in items.data] == ["message"] * 4  # two inputs, two replies
    assert [item.role for item in items.data] == ["user", "assistant", "user", "assistant"]
    assert items.data[0].content[0].text == "My name is Ada."


def test_input_token_count(client: openai.OpenAI) -> None:
    counted = client.responses.input_tokens.count(model=MODEL, input="Say hello.")
    created = client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=2)
    assert created.usage is not None and counted.input_tokens == created.usage.input_tokens


def test_unsupported_tool_is_refused_by_name(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
    assert refused.value.body["param"] == "tools[0].type"  # type: ignore[index]


def test_other_organization_gets_404(client: openai.OpenAI, stranger: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Hi", max_output_tokens=4, background=True
    )
    for call in (
        lambda: stranger.responses.retrieve(response.id),
        lambda: stranger.responses.input_items.list(response.id),
        lambda: stranger.responses.cancel(response.id),
        lambda: stranger.responses.delete(response.id),
        lambda: stranger.responses.create(model=MODEL, input="x", previous_response_id=response.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert client.responses.retrieve(response.id).id == response.id
