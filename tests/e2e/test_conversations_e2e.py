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
