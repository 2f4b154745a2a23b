"""Tools reach the template; the model's tool-call output becomes OpenAI tool_calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.generation.tool_calls import forced_call_schema
from api.generation.tool_stream import parse_reply
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
    malformed = "<tool_call>not json</tool_call>"
    assert parse_reply(malformed) == parse_reply(malformed).__class__(malformed, [])
    # A malformed call stays text beside a good one, and an unclosed one stays text too.
    mixed = parse_reply(f"A {malformed} {CALL} B <tool_call>{{")
    assert mixed.content == f"A {malformed} B <tool_call>{{" and len(mixed.tool_calls) == 1
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


FORCED = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def streamed_reply(client: TestClient, body: dict[str, object]) -> dict[str, Any]:
    """A streamed choice joined up as a JSON reply's choice (call ids left out)."""
    with client.stream("POST", CHAT, json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    content, reason, tokens = "", None, []
    calls: dict[int, dict[str, str]] = {}
    for choice in (chunk["choices"][0] for chunk in chunks if chunk["choices"]):
        content += choice["delta"].get("content") or ""
        for call in choice["delta"].get("tool_calls") or []:
            head = calls.setdefault(call["index"], {"name": "", "arguments": ""})
            head["name"] += call["function"].get("name", "")
            head["arguments"] += call["function"]["arguments"]
        reason = choice["finish_reason"] or reason
        tokens += [entry["token"] for entry in (choice["logprobs"] or {}).get("content", [])]
    return {
        "content": content or (None if calls else content),
        "calls": [calls[index] for index in sorted(calls)],
        "finish_reason": reason,
        "tokens": tokens,
    }


def json_reply(client: TestClient, body: dict[str, object]) -> dict[str, Any]:
    choice = client.post(CHAT, json=body).json()["choices"][0]
    logprobs = choice["logprobs"] or {"content": []}
    return {
        "content": choice["message"]["content"],
        "calls": [call["function"] for call in choice["message"]["tool_calls"] or []],
        "finish_reason": choice["finish_reason"],
        "tokens": [entry["token"] for entry in logprobs["content"]],
    }


@pytest.mark.parametrize(
    "reply",
    [
        CALL,
        "Let me check. " + CALL,
        CALL + " " + CALL + "\nDone.",
        "Sure <tool_call>not json</tool_call> " + CALL,
        "Unclosed <tool_call> {",
        "No <tool here",
        "Just text.",
    ],
)
@pytest.mark.parametrize("logprobs", [False, True])
def test_streamed_tool_replies_equal_json_ones(
    client: TestClient, backend: FakeBackend, reply: str, logprobs: bool
) -> None:
    backend.reply = reply
    body: dict[str, object] = {**ASK}
    if logprobs:
        body |= {"logprobs": True, "top_logprobs": 1}
    streamed, whole = streamed_reply(client, body), json_reply(client, body)
    assert streamed == whole
    assert ("".join(whole["tokens"]) == reply) is logprobs


def test_text_before_a_call_streams_as_it_comes(client: TestClient, backend: FakeBackend) -> None:
    backend.reply = "Let me check the weather. " + CALL
    with client.stream("POST", CHAT, json={**ASK, "stream": True}) as response:
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks[1:] if c["choices"]]
    texts = [d["content"] for d in deltas if d.get("content")]
    # One chunk per generated piece (the fake's words): nothing waits for the reply's end.
    assert texts == ["Let", " me", " check", " the", " weather."]
    first_call = next(i for i, d in enumerate(deltas) if d.get("tool_calls"))
    assert all(d.get("content") for d in deltas[:first_call])


@pytest.mark.parametrize(
    ("choice", "reason"), [("auto", "tool_calls"), ("required", "tool_calls"), (NAMED, "stop")]
)
def test_finish_reason_follows_openai_for_each_tool_choice(
    client: TestClient, backend: FakeBackend, choice: object, reason: str
) -> None:
    # OpenAI ends a call forced by name with "stop", and "auto"/"required" calls with
    # "tool_calls" (vllm-project/vllm#25054 lists OpenAI's replies), streamed or not.
    backend.reply = CALL if choice == "auto" else FORCED
    body = {**ASK, "tool_choice": choice}
    streamed, whole = streamed_reply(client, body), json_reply(client, body)
    assert streamed == whole
    assert whole["finish_reason"] == reason
    assert whole["calls"] == [{"name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert whole["content"] is None


@pytest.mark.parametrize("choice", ["required", NAMED])
@pytest.mark.parametrize("max_tokens", [1, 2, 4])
def test_a_forced_call_cut_by_max_tokens_is_a_call(
    client: TestClient, backend: FakeBackend, choice: object, max_tokens: int
) -> None:
    backend.reply = FORCED
    body = {**ASK, "tool_choice": choice, "max_tokens": max_tokens}
    streamed, whole = streamed_reply(client, body), json_reply(client, body)
    assert streamed == whole
    assert (whole["content"], whole["finish_reason"]) == (None, "length")
    generated = " ".join(FORCED.split(" ")[:max_tokens])
    (call,) = whole["calls"]
    assert call["name"] == "get_weather"  # the only function the guide allows
    assert call["arguments"] == generated.partition('"arguments": ')[2]
