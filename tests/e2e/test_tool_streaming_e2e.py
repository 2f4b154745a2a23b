"""Tool replies and the WebSocket route against the real stack: streamed replies join up to
the JSON ones, text streams as it comes, forced calls cut by max_tokens stay calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 24}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
ASK = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    "tools": [WEATHER, TIME],
    "temperature": 0,
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as http:
        yield http


def json_reply(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    return {
        "content": choice["message"]["content"],
        "calls": [call["function"] for call in choice["message"]["tool_calls"] or []],
        "finish_reason": choice["finish_reason"],
        "logprobs": (choice["logprobs"] or {"content": []})["content"],
    }


def streamed_reply(client: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The streamed choice joined up like :func:`json_reply`'s, and its count of text chunks."""
    content, reason, logprobs, texts = "", None, [], 0
    calls: dict[int, dict[str, str]] = {}
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            for choice in json.loads(line[6:])["choices"]:
                content += choice["delta"].get("content") or ""
                texts += bool(choice["delta"].get("content"))
                for call in choice["delta"].get("tool_calls") or []:
                    joined = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                    joined["name"] += call["function"].get("name", "")
                    joined["arguments"] += call["function"]["arguments"]
                reason = choice["finish_reason"] or reason
                logprobs += (choice["logprobs"] or {"content": []})["content"]
    reply = {
        "content": content or (None if calls else content),
        "calls": [calls[index] for index in sorted(calls)],
        "finish_reason": reason,
        "logprobs": logprobs,
    }
    return reply, texts


@pytest.mark.parametrize(
    "question",
    ["What's the weather in Paris?", "Tell me a story about a cat.", "What time is it?"],
)
def test_auto_tool_replies_stream_as_they_come_and_equal_json_ones(
    client: httpx.Client, question: str
) -> None:
    body = {
        **ASK,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 40,
        "logprobs": True,
        "top_logprobs": 2,
    }
    whole = json_reply(client, body)
    streamed, texts = streamed_reply(client, body)
    assert streamed == whole
    assert [entry["token"] for entry in whole["logprobs"]]  # logprobs came with tools
    if whole["content"] and len(whole["content"]) > 4:
        assert texts > 1  # not held to the end: the text arrived in pieces


@pytest.mark.parametrize(("choice", "reason"), [("required", "tool_calls"), (NAMED, "stop")])
def test_forced_calls_finish_as_openai_does(
    client: httpx.Client, choice: object, reason: str
) -> None:
    body = {**ASK, "tool_choice": choice, "max_tokens": 64}
    whole = json_reply(client, body)
    assert streamed_reply(client, body)[0] == whole
    assert (whole["content"], whole["finish_reason"]) == (None, reason)
    (call,) = whole["calls"]
    assert isinstance(json.loads(call["arguments"]), dict)


@pytest.mark.parametrize("choice", ["required", NAMED])
def test_a_forced_call_cut_by_max_tokens_is_a_call_with_length(
    client: httpx.Client, choice: object
) -> None:
    body = {**ASK, "tool_choice": choice, "max_tokens": 64, "logprobs": True}
    complete = json_reply(client, body)
    tokens = [entry["token"] for entry in complete["logprobs"]]
    assert complete["finish_reason"] in {"stop", "tool_calls"} and len(tokens) > 3
    # Cuts before the name ends, inside it or the arguments: wherever the model's tokens fall.
    for max_tokens in sorted({1, len(tokens) // 3, 2 * len(tokens) // 3}):
        cut = {**body, "max_tokens": max_tokens}
        whole = json_reply(client, cut)
        assert streamed_reply(client, cut)[0] == whole
        assert (whole["content"], whole["finish_reason"]) == (None, "length")
        (call,) = whole["calls"]
        generated = "".join(tokens[:max_tokens])
        if choice == NAMED or '"name": "get_weather"' in generated:
            assert call["name"] == "get_weather"
        # As generated: the arguments' JSON text so far, up to a character max_tokens cut in
        # two (U+FFFD); the complete call's arguments are compact JSON.
        _, _, arguments = generated.partition('"arguments": ')
        assert call["arguments"].removesuffix("\ufffd") == arguments.removesuffix("\ufffd")
        compact = arguments.replace(": ", ":").replace(", ", ",").removesuffix("\ufffd")
        assert complete["calls"][0]["arguments"].startswith(compact)


def ws_url(stack: Stack) -> str:
    return stack.api_url.replace("http://", "ws://") + "/v1/chat/completions/ws"


def test_websocket_streams_by_default_and_closes_on_a_binary_frame(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    request = {**ASK, "max_tokens": 16}
    del request["tools"]
    with connect(ws_url(stack), additional_headers=headers) as ws:
        ws.send(json.dumps(request))
        chunks = []
        while (message := ws.recv()) != "[DONE]":
            chunks.append(json.loads(message))
        ws.send(json.dumps({**request, "stream": False}))
        whole = json.loads(ws.recv())
        assert ws.recv() == "[DONE]"
        ws.send(b"\x00binary")
        error = json.loads(ws.recv())["error"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len([text for text in texts if text]) > 1
    assert "".join(text or "" for text in texts) == whole["choices"][0]["message"]["content"]
    assert error["code"] == "unsupported_data"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
