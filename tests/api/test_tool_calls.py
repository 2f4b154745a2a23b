"""Tools reach the template; the model's tool-call output becomes OpenAI tool_calls."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from api.tool_calls import forced_call_schema, parse_reply
from tests.api.fakes import FakeBackend
from tests.api.test_chat import sse_events

CHAT = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    "tools": [WEATHER],
}
CALL = '<tool_call> {"name": "get_weather", "arguments": {"city": "Paris"}} </tool_call>'


def test_parse_reply_variants() -> None:
    parsed = parse_reply(CALL)
    assert parsed.content is None
    assert parsed.tool_calls[0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert parse_reply("Sure. " + CALL + CALL).content == "Sure."
    assert parse_reply("<tool_call>not json</tool_call>").tool_calls == []
    forced = parse_reply('{"name": "get_weather", "arguments": {}}', forced=True)
    assert forced.tool_calls and forced.content is None


def test_forced_schema_for_named_and_required() -> None:
    named = json.loads(
        forced_call_schema([WEATHER], {"type": "function", "function": {"name": "get_weather"}})
        or ""
    )
    assert named["properties"]["name"] == {"const": "get_weather"}
    assert forced_call_schema([WEATHER], "auto") is None
    assert forced_call_schema([WEATHER], {"type": "function", "function": {"name": "nope"}}) is None


def test_tool_call_reply_non_streaming(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = CALL
    body = client.post(CHAT, json=ASK).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    sent = backend.requests[-1]
    assert json.loads(sent.tools_json or "") == [WEATHER] and not sent.forced_tool_call


def test_tool_call_reply_streaming(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = CALL
    with client.stream("POST", CHAT, json={**ASK, "stream": True}) as response:
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"] == {
        "name": "get_weather",
        "arguments": "",
    }
    assert calls[1] == {"index": 0, "function": {"arguments": '{"city":"Paris"}'}}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_plain_answer_with_tools_is_content(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(CHAT, json=ASK).json()
    assert body["choices"][0]["message"]["content"] == backend.reply
    assert body["choices"][0]["finish_reason"] == "stop"


def test_required_choice_uses_guided_decoding(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    body = client.post(CHAT, json={**ASK, "tool_choice": "required"}).json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert backend.requests[-1].params.guide_type == "json_schema"
    assert backend.requests[-1].forced_tool_call


def test_history_with_tool_results_reaches_the_template(
    client: TestClient, backend: FakeBackend
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    messages = [
        *ASK["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ]
    assert client.post(CHAT, json={**ASK, "messages": messages}).status_code == 200
    sent = json.loads(backend.requests[-1].messages_json or "")
    assert sent[1]["tool_calls"] == [call] and sent[2]["tool_call_id"] == "call_1"


@pytest.mark.parametrize("choice", [{"type": "function", "function": {"name": "nope"}}])
def test_unknown_named_function_is_400(client: TestClient, choice: dict[str, object]) -> None:
    response = client.post(CHAT, json={**ASK, "tool_choice": choice})
    assert response.status_code == 400 and response.json()["error"]["param"] == "tool_choice"
