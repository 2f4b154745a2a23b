"""Conversations against the real stack: replies from the stored history, streamed too."""

from __future__ import annotations

import json

import httpx
import pytest

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
