"""response_format, logit_bias and logprobs: translated to the engine, rendered as OpenAI does."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.types import GenerationChunk, GenerationRequest
from api.settings import Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH
from tests.api.test_chat import sse_events

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


def test_json_object_and_json_schema_become_guides(
    client: TestClient, backend: FakeBackend
) -> None:
    client.post(CHAT, json={**HELLO, "response_format": {"type": "json_object"}})
    assert (backend.requests[-1].params.guide_type, backend.requests[-1].params.guide) == (
        "json_schema",
        '{"type": "object"}',
    )
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema, "strict": True}}
    client.post(CHAT, json={**HELLO, "response_format": fmt})
    assert json.loads(backend.requests[-1].params.guide or "") == schema
    assert client.post(CHAT, json={**HELLO, "response_format": {"type": "text"}}).status_code == 200
    bad = client.post(CHAT, json={**HELLO, "response_format": {"type": "yaml"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_format"
    no_schema = {"type": "json_schema", "json_schema": {"name": "c"}}
    assert client.post(CHAT, json={**HELLO, "response_format": no_schema}).status_code == 400


def test_logit_bias_is_sent_as_pairs(client: TestClient, backend: FakeBackend) -> None:
    client.post(CHAT, json={**HELLO, "logit_bias": {"12": 5.5, "7": -100}})
    assert backend.requests[-1].params.logit_bias == ((12, 5.5), (7, -100.0))
    assert client.post(CHAT, json={**HELLO, "logit_bias": {"x": 1}}).status_code == 400
    assert client.post(CHAT, json={**HELLO, "logit_bias": {"1": 101}}).status_code == 400


def test_chat_logprobs_with_top_alternatives(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(CHAT, json={**HELLO, "logprobs": True, "top_logprobs": 1}).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == backend.reply
    assert content[0] == {
        "token": "Hello",
        "logprob": -0.5,
        "bytes": list(b"Hello"),
        "top_logprobs": [{"token": "Hello", "logprob": -0.5, "bytes": list(b"Hello")}],
    }
    assert backend.requests[-1].params.top_logprobs == 1
    plain = client.post(CHAT, json=HELLO).json()
    assert plain["choices"][0]["logprobs"] is None


def test_streamed_chat_logprobs_follow_the_text(client: TestClient, backend: FakeBackend) -> None:
    with client.stream("POST", CHAT, json={**HELLO, "stream": True, "logprobs": True}) as response:
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    entries = [
        e for c in chunks for e in ((c["choices"][0].get("logprobs") or {}).get("content") or [])
    ]
    assert "".join(entry["token"] for entry in entries) == backend.reply
    assert all(entry["top_logprobs"] == [] for entry in entries)


def test_completion_legacy_logprobs(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(
        "/v1/completions",
        json={"model": "tiny-chat", "prompt": "Say:", "logprobs": 2, "echo": True, "max_tokens": 2},
    ).json()
    logprobs = body["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["Hello", " there,"]
    assert logprobs["token_logprobs"] == [-0.5, -0.5]
    assert logprobs["top_logprobs"][0] == {"Hello": -0.5, "?": -2.0}
    assert logprobs["text_offset"] == [4, 9]


def test_streamed_completion_logprobs_match_the_whole_reply(
    client: TestClient, backend: FakeBackend
) -> None:
    body = {"model": "tiny-chat", "prompt": "Say:", "logprobs": 2, "echo": True, "max_tokens": 2}
    whole = client.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as response:
        chunks = [json.loads(e) for e in sse_events(response.read().decode())[:-1]]
    parts = [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["logprobs"]]
    assert len(parts) >= 2  # one per token-carrying chunk, not one at the end
    streamed = {key: [v for part in parts for v in part[key]] for key in whole}
    assert streamed == whole
    assert chunks[0]["choices"][0] == {
        "text": "Say:",
        "index": 0,
        "logprobs": None,
        "finish_reason": None,
    }


class SilentBackend(FakeBackend):
    """A model that ends at once: no text, no tokens (tiny-chat does for some prompts)."""

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        yield GenerationChunk(prompt_tokens=self.prompt_tokens)
        yield GenerationChunk(final=True)


@pytest.mark.parametrize("reply", ["silent", "words"])
def test_streamed_logprobs_join_up_to_the_json_reply_even_when_empty(reply: str) -> None:
    backend = SilentBackend() if reply == "silent" else FakeBackend()
    app = create_app(Settings(), backend_factory=lambda _: backend)
    legacy = {"model": "tiny-chat", "prompt": "Say:", "logprobs": 2, "max_tokens": 4}
    chat = {**HELLO, "logprobs": True, "top_logprobs": 1, "max_tokens": 4}
    with TestClient(app, headers=AUTH) as client:
        whole = client.post("/v1/completions", json=legacy).json()["choices"][0]["logprobs"]
        with client.stream("POST", "/v1/completions", json={**legacy, "stream": True}) as r:
            chunks = [json.loads(e) for e in sse_events(r.read().decode())[:-1]]
        parts = [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["logprobs"]]
        assert parts, "no chunk carried logprobs"
        assert {key: [v for part in parts for v in part[key]] for key in whole} == whole
        whole_chat = client.post(CHAT, json=chat).json()["choices"][0]["logprobs"]["content"]
        with client.stream("POST", CHAT, json={**chat, "stream": True}) as r:
            chat_chunks = [json.loads(e) for e in sse_events(r.read().decode())[:-1]]
        logprobs = [c["choices"][0].get("logprobs") for c in chat_chunks if c["choices"]]
        assert any(lp is not None for lp in logprobs), "no chunk carried logprobs"
        joined = [e for lp in logprobs if lp for e in lp["content"]]
        assert joined == whole_chat
    if reply == "silent":
        assert whole["tokens"] == [] and whole_chat == []
