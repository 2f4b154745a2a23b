"""``/v1/responses`` over the fake backend: wire shapes (openai 3.63.0's types), event order,
storage, chaining, tools, refusals, background runs."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.types import GenerationChunk, GenerationRequest
from api.errors import ContextLengthExceededError
from api.limits.estimate import estimate
from api.registry import ModelRegistry
from api.settings import Settings
from tests.api.batching import create_batch, jsonl, read_lines, upload, wait_for
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY, gateway_settings

RESPONSES = "/v1/responses"
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post(RESPONSES, json={"model": "tiny-chat", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    SdkResponse.model_validate(body)
    return body


def stream_events(text: str) -> list[dict[str, Any]]:
    """The events of a Responses stream, each checked against the SDK's event union and
    against its ``event:`` line."""
    events = []
    for frame in filter(None, text.split("\n\n")):
        kind_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert kind_line == f"event: {event['type']}"
        EVENTS.validate_python(event)
        events.append(event)
    return events


def test_plain_text_response(client: TestClient, backend: FakeBackend) -> None:
    body = create(client, input="Hi", instructions="Be brief.")
    assert body["object"] == "response" and body["status"] == "completed"
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["text"] == backend.reply
    assert body["usage"]["input_tokens"] == 7
    assert body["usage"]["output_tokens"] == len(backend.reply.split())
    assert body["usage"]["total_tokens"] == 7 + len(backend.reply.split())
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    sent = json.loads(backend.requests[-1].messages_json or "[]")
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_max_output_tokens_makes_it_incomplete(client: TestClient) -> None:
    body = create(client, input="Hi", max_output_tokens=2)
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["content"][0]["text"] == "Hello there,"


def test_stream_event_sequence(client: TestClient, backend: FakeBackend) -> None:
    response = client.post(RESPONSES, json={"model": "tiny-chat", "input": "Hi", "stream": True})
    assert response.status_code == 200
    assert "[DONE]" not in response.text
    events = stream_events(response.text)
    kinds = [event["type"] for event in events]
    words = len(backend.reply.split())
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * words,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == backend.reply
    final = events[-1]["response"]
    stored = client.get(f"{RESPONSES}/{final['id']}").json()
    assert stored["output"] == final["output"] and stored["status"] == "completed"


def test_previous_response_id_carries_the_conversation(
    client: TestClient, backend: FakeBackend
) -> None:
    first = create(client, input="My name is Ada.", instructions="first only")
    second = create(client, input="What is my name?", previous_response_id=first["id"])
    assert second["previous_response_id"] == first["id"]
    sent = json.loads(backend.requests[-1].messages_json or "[]")
    # Instructions are not carried over (OpenAI's rule); the turns are.
    assert sent == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": backend.reply},
        {"role": "user", "content": "What is my name?"},
    ]
    items = client.get(f"{RESPONSES}/{second['id']}/input_items", params={"order": "asc"})
    assert [item["type"] for item in items.json()["data"]] == ["message"] * 3


def test_function_tool_round_trip(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = CALL
    first = create(client, input="Weather in Paris?", tools=[WEATHER])
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["call_id"].startswith("call_") and call["id"].startswith("fc_")
    tools = json.loads(backend.requests[-1].tools_json or "[]")
    assert tools[0]["function"]["name"] == "get_weather"
    backend.reply = "It is sunny."
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    second = create(client, input=[output], previous_response_id=first["id"], tools=[WEATHER])
    assert second["output"][0]["content"][0]["text"] == "It is sunny."
    sent = json.loads(backend.requests[-1].messages_json or "[]")
    assert sent[1]["tool_calls"][0]["id"] == call["call_id"]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": call["call_id"]}


def test_streamed_function_call_events(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = CALL
    response = client.post(
        RESPONSES, json={"model": "tiny-chat", "input": "x", "tools": [WEATHER], "stream": True}
    )
    kinds = [event["type"] for event in stream_events(response.text)]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_text_format_json_schema_guides_the_reply(client: TestClient, backend: FakeBackend) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    text = {"format": {"type": "json_schema", "name": "thing", "schema": schema}}
    body = create(client, input="x", text=text)
    assert body["text"]["format"]["name"] == "thing"
    params = backend.requests[-1].params
    assert params.guide_type == "json_schema" and json.loads(params.guide or "") == schema


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "computer_call_output"}]}, "input[0].type"),
        ({"max_output_tokens": 5000}, "max_output_tokens"),
        ({"include": ["nonsense"]}, "include[0]"),
        ({"previous_response_id": "resp_x", "conversation": "conv_x"}, "conversation"),
        ({"background": True, "store": False}, "background"),
        ({"tool_choice": {"type": "file_search"}, "tools": [WEATHER]}, "tool_choice"),
    ],
)
def test_refused_by_name(client: TestClient, fields: dict[str, Any], param: str) -> None:
    response = client.post(RESPONSES, json={"model": "tiny-chat", "input": "x", **fields})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_unknown_previous_response_is_404(client: TestClient) -> None:
    response = client.post(
        RESPONSES, json={"model": "tiny-chat", "input": "x", "previous_response_id": "resp_no"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "previous_response_id"


def test_store_false_is_not_retrievable(client: TestClient) -> None:
    body = create(client, input="x", store=False)
    assert client.get(f"{RESPONSES}/{body['id']}").status_code == 404


def test_retrieve_delete_and_input_items(client: TestClient) -> None:
    body = create(
        client, input=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    )
    path = f"{RESPONSES}/{body['id']}"
    assert client.get(path).json()["id"] == body["id"]
    page = client.get(f"{path}/input_items", params={"limit": 1}).json()
    assert page["has_more"] is True
    assert page["data"][0]["content"][0]["text"] == "b"  # newest first by default
    rest = client.get(f"{path}/input_items", params={"after": page["last_id"]}).json()
    assert [item["content"][0]["text"] for item in rest["data"]] == ["a"]
    deleted = client.delete(path).json()
    assert deleted == {"id": body["id"], "object": "response.deleted", "deleted": True}
    assert client.get(path).status_code == 404


def test_cancel_refuses_a_foreground_response(client: TestClient) -> None:
    body = create(client, input="x")
    response = client.post(f"{RESPONSES}/{body['id']}/cancel")
    assert response.status_code == 400


class ContextBackend(FakeBackend):
    """Refuses prompts over ``limit`` characters of messages, as Triton refuses prompts over
    the context."""

    limit: int = 5000

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if len(request.messages_json or "") > self.limit:
            self.requests.append(request)
            raise ContextLengthExceededError("too long", param="messages")
        async for chunk in super().generate(request):
            yield chunk


def test_truncation_auto_drops_the_oldest_items() -> None:
    backend = ContextBackend()
    long = "word " * 700  # 3500 characters: two of them are over the backend's limit
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        first = create(client, input=long, max_output_tokens=16)
        again = {"model": "tiny-chat", "input": long, "previous_response_id": first["id"]}
        refused = client.post(RESPONSES, json=again)
        assert refused.status_code == 400, refused.text  # truncation disabled: too long
        error = refused.json()["error"]
        assert error["param"] == "input" and error["code"] == "context_length_exceeded"
        create(client, **again, truncation="auto")
        sent = json.loads(backend.requests[-1].messages_json or "[]")
        # The oldest turn is dropped; the reply to it and the new input fit.
        assert sent == [
            {"role": "assistant", "content": backend.reply},
            {"role": "user", "content": long},
        ]


def test_background_response_runs_to_completion(backend: FakeBackend) -> None:
    backend.chunk_delay_s = 0.02
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        body = create(client, input="x", background=True)
        assert body["status"] in ("queued", "in_progress") and body["background"] is True
        path = f"{RESPONSES}/{body['id']}"
        for _ in range(200):
            polled = client.get(path).json()
            if polled["status"] not in ("queued", "in_progress"):
                break
            time.sleep(0.02)
        assert polled["status"] == "completed"
        assert polled["output"][0]["content"][0]["text"] == backend.reply
        replay = client.get(path, params={"stream": "true", "starting_after": 2})
        events = stream_events(replay.text)
        assert events[0]["sequence_number"] == 3
        assert events[-1]["type"] == "response.completed"


def test_background_cancel(backend: FakeBackend) -> None:
    backend.chunk_delay_s = 0.5
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        body = create(client, input="x", background=True)
        cancelled = client.post(f"{RESPONSES}/{body['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(0.1)
        assert client.get(f"{RESPONSES}/{body['id']}").json()["status"] == "cancelled"


def test_admission_estimate_reads_responses_bodies() -> None:
    registry = ModelRegistry(Settings().models)
    items = [{"role": "user", "content": [{"type": "input_text", "text": "x" * 400}]}]
    payload = {"model": "tiny-chat", "input": items, "max_output_tokens": 50}
    demand = estimate(json.dumps(payload).encode(), registry)
    assert demand.tokens == 100 + 50


def test_batch_lines_of_responses(
    client: TestClient, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_BATCHES__POLL_INTERVAL_S", "0.02")
    line = {"method": "POST", "url": RESPONSES}
    good = {**line, "custom_id": "a", "body": {"model": "tiny-chat", "input": "Hi"}}
    chained = {"model": "tiny-chat", "input": "x", "previous_response_id": "resp_1"}
    refused = {**line, "custom_id": "b", "body": chained}
    batch = create_batch(client, upload(client, jsonl([good, refused]))["id"], RESPONSES)
    done = wait_for(client, batch["id"])
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [output] = read_lines(client, done["output_file_id"])
    SdkResponse.model_validate(output["response"]["body"])
    assert output["response"]["body"]["output"][0]["content"][0]["text"] == backend.reply
    [error] = read_lines(client, done["error_file_id"])
    assert error["response"]["body"]["error"]["param"] == "previous_response_id"


def test_conversation_grows_with_each_response(client: TestClient, backend: FakeBackend) -> None:
    conversation = client.post("/v1/conversations", json={}).json()
    create(client, input="My name is Ada.", conversation=conversation["id"])
    second = create(client, input="My name?", conversation={"id": conversation["id"]})
    assert second["conversation"] == {"id": conversation["id"]}
    sent = json.loads(backend.requests[-1].messages_json or "[]")
    assert [m["content"] for m in sent] == ["My name is Ada.", backend.reply, "My name?"]
    items = client.get(
        f"/v1/conversations/{conversation['id']}/items", params={"order": "asc"}
    ).json()["data"]
    assert [item["role"] for item in items] == ["user", "assistant", "user", "assistant"]
    missing = client.post(
        RESPONSES, json={"model": "tiny-chat", "input": "x", "conversation": "conv_nope"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "conversation"


def test_other_organization_gets_404(client: TestClient) -> None:
    body = create(client, input="x")
    org = client.post("/v1/admin/organizations", json={"name": "other"}).json()
    key = client.post("/v1/admin/keys", json={"org_id": org["id"]}).json()["key"]
    other = {"Authorization": f"Bearer {key}"}
    path = f"{RESPONSES}/{body['id']}"
    assert client.get(path, headers=other).status_code == 404
    assert client.get(f"{path}/input_items", headers=other).status_code == 404
    assert client.post(f"{path}/cancel", headers=other).status_code == 404
    assert client.delete(path, headers=other).status_code == 404
    chained = {"model": "tiny-chat", "input": "x", "previous_response_id": body["id"]}
    assert client.post(RESPONSES, json=chained, headers=other).status_code == 404
    assert client.get(path).status_code == 200


def test_background_tokens_count_against_the_token_limit(
    backend: FakeBackend, tmp_path: Path
) -> None:
    # The background run generates after its request has ended: the tokens it used are
    # settled when it ends, like a foreground request's (before, that request settled 0).
    settings = gateway_settings(
        tmp_path,
        limits={"tiers": {"default": {}, "tight": {"tokens_per_minute": 100}}},
        auth={"bootstrap_key": TEST_KEY, "bootstrap_tier": "tight"},
    )
    chat = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10}
    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        first = c.post("/v1/chat/completions", json=chat)
        assert first.status_code == 200, first.text
        body = create(c, input="x", background=True, max_output_tokens=20)
        for _ in range(200):
            polled = c.get(f"{RESPONSES}/{body['id']}").json()
            if polled["status"] not in ("queued", "in_progress"):
                break
            time.sleep(0.02)
        assert polled["status"] == "incomplete" or polled["status"] == "completed", polled
        second = c.post("/v1/chat/completions", json=chat)
        assert second.status_code == 200, second.text
    charged = first.json()["usage"]["total_tokens"] + polled["usage"]["total_tokens"]
    remaining = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in (first, second)]
    # The bucket refills 100 tokens a minute: at most a couple while the test runs.
    assert charged - 2 <= remaining[0] - remaining[1] <= charged, (remaining, charged)


def test_an_input_item_id_the_conversation_holds_is_a_400(client: TestClient) -> None:
    conversation = client.post("/v1/conversations", json={}).json()
    item = {"id": "msg_mine", "type": "message", "role": "user", "content": "Hello"}
    create(client, input=[item], conversation=conversation["id"])
    again = client.post(
        RESPONSES,
        json={"model": "tiny-chat", "input": [item], "conversation": conversation["id"]},
    )
    assert again.status_code == 400, again.text
    assert again.json()["error"]["param"] == "input[0].id"
    items = client.get(f"/v1/conversations/{conversation['id']}/items").json()["data"]
    assert len(items) == 2  # the first response's input and output, nothing lost or doubled
