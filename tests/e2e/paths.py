"""One chat or legacy request sent along every path the API offers, each reply reduced to the
fields that must agree: text, finish reason, usage and log probabilities.

Used by the differential tests (tests/e2e/test_one_truth.py) against the real stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import Stack

BATCH_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Outcome:
    """What one path returned for one choice."""

    text: str
    finish_reason: str | None
    completion_tokens: int | None
    prompt_tokens: int | None
    # (token, logprob) pairs: the token's bytes for chat, its text for legacy completions.
    logprobs: tuple[tuple[bytes | str, float], ...] | None = None


def client(stack: Stack) -> httpx.Client:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    return httpx.Client(base_url=stack.api_url, headers=headers, timeout=120)


def chat_logprobs(choice: dict[str, Any]) -> Pairs | None:
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return None
    return tuple((bytes(entry["bytes"]), round(entry["logprob"], 4)) for entry in content)


def chat_json(http: httpx.Client, body: dict[str, Any]) -> list[Outcome]:
    response = http.post("/v1/chat/completions", json={**body, "stream": False})
    assert response.status_code == 200, response.text
    reply = response.json()
    usage = reply["usage"]
    return [
        Outcome(
            text=choice["message"]["content"] or "",
            finish_reason=choice["finish_reason"],
            completion_tokens=usage["completion_tokens"] if len(reply["choices"]) == 1 else None,
            prompt_tokens=usage["prompt_tokens"],
            logprobs=chat_logprobs(choice),
        )
        for choice in sorted(reply["choices"], key=lambda c: c["index"])
    ]


Pairs = tuple[tuple[bytes | str, float], ...]


def _from_chunks(
    chunks: list[dict[str, Any]],
    choices: int,
    text_of: Callable[[dict[str, Any]], str] = lambda c: c["delta"].get("content") or "",
    logprobs_of: Callable[[dict[str, Any]], Pairs | None] = lambda c: chat_logprobs(c),
) -> list[Outcome]:
    """Streamed chunks joined per choice (chat deltas by default, or legacy ``text``)."""
    texts = [""] * choices
    reasons: list[str | None] = [None] * choices
    logprobs: list[list[tuple[bytes | str, float]] | None] = [None] * choices
    usage: dict[str, int] = {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            index = choice["index"]
            texts[index] += text_of(choice)
            reasons[index] = choice["finish_reason"] or reasons[index]
            if (lp := logprobs_of(choice)) is not None:
                logprobs[index] = [*(logprobs[index] or []), *lp]
    return [
        Outcome(
            text=texts[index],
            finish_reason=reasons[index],
            completion_tokens=usage.get("completion_tokens") if choices == 1 else None,
            prompt_tokens=usage.get("prompt_tokens"),
            logprobs=None if logprobs[index] is None else tuple(logprobs[index] or ()),
        )
        for index in range(choices)
    ]


def sse_payloads(http: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    return [json.loads(frame) for frame in frames[:-1]]


def chat_sse(http: httpx.Client, body: dict[str, Any]) -> list[Outcome]:
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    return _from_chunks(sse_payloads(http, "/v1/chat/completions", streamed), body.get("n", 1))


def chat_websocket(stack: Stack, body: dict[str, Any]) -> list[Outcome]:
    from websockets.sync.client import connect

    url = stack.api_url.replace("http://", "ws://") + "/v1/chat/completions/ws"
    request = {**body, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    chunks = []
    with connect(url, additional_headers=headers, open_timeout=30) as socket:
        socket.send(json.dumps(request))
        while (message := socket.recv(timeout=120)) != "[DONE]":
            payload = json.loads(message)
            assert "error" not in payload, payload
            chunks.append(payload)
    return _from_chunks(chunks, body.get("n", 1))


def _legacy_logprobs(choice: dict[str, Any]) -> Pairs | None:
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return None
    pairs = zip(logprobs["tokens"], logprobs["token_logprobs"], strict=True)
    return tuple((token, round(value, 4)) for token, value in pairs)


def completion_json(http: httpx.Client, body: dict[str, Any]) -> list[Outcome]:
    response = http.post("/v1/completions", json={**body, "stream": False})
    assert response.status_code == 200, response.text
    reply = response.json()
    single = len(reply["choices"]) == 1
    return [
        Outcome(
            text=choice["text"],
            finish_reason=choice["finish_reason"],
            completion_tokens=reply["usage"]["completion_tokens"] if single else None,
            prompt_tokens=reply["usage"]["prompt_tokens"],
            logprobs=_legacy_logprobs(choice),
        )
        for choice in sorted(reply["choices"], key=lambda c: c["index"])
    ]


def completion_sse(http: httpx.Client, body: dict[str, Any]) -> list[Outcome]:
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    chunks = sse_payloads(http, "/v1/completions", streamed)
    choices = len({choice["index"] for chunk in chunks for choice in chunk["choices"]})
    return _from_chunks(chunks, choices, lambda c: str(c["text"]), _legacy_logprobs)


def conversation(http: httpx.Client, body: dict[str, Any], stream: bool) -> Outcome:
    """The first turn of a new conversation (no system prompt) asking the chat's question."""
    created = http.post("/v1/conversations", json={"model": body["model"]})
    assert created.status_code == 200, created.text
    path = f"/v1/conversations/{created.json()['id']}/messages"
    options: dict[str, Any] = {
        key: body[key] for key in ("max_tokens", "temperature", "stop") if key in body
    }
    turn: dict[str, Any] = {"content": body["messages"][-1]["content"], **options}
    if stream:
        chunks = sse_payloads(http, path, {**turn, "stream": True})
        streamed = _from_chunks(chunks, 1)[0]
        stored = http.get(path).json()["data"][-1]
        assert stored["content"] == streamed.text, (stored, streamed)
        return streamed
    response = http.post(path, json=turn)
    assert response.status_code == 200, response.text
    reply = response.json()
    stored = http.get(path).json()["data"][-1]
    assert stored["content"] == reply["content"]
    usage: dict[str, int] = reply.get("usage") or {}
    return Outcome(
        text=reply["content"],
        finish_reason=None,
        completion_tokens=usage.get("completion_tokens"),
        prompt_tokens=usage.get("prompt_tokens"),
    )


def batch(http: httpx.Client, path: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``bodies`` as one batch; the response bodies in input order."""
    lines = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": path, "body": body}) + "\n"
        for i, body in enumerate(bodies)
    )
    uploaded = http.post(
        "/v1/files",
        files={"file": ("in.jsonl", lines.encode(), "application/jsonl")},
        data={"purpose": "batch"},
    )
    assert uploaded.status_code == 200, uploaded.text
    created = http.post(
        "/v1/batches",
        json={"input_file_id": uploaded.json()["id"], "endpoint": path, "completion_window": "24h"},
    )
    assert created.status_code == 200, created.text
    job = created.json()
    deadline = time.monotonic() + BATCH_TIMEOUT_S
    while job["status"] not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = http.get(f"/v1/batches/{job['id']}").json()
    assert job["status"] == "completed", job
    output = http.get(f"/v1/files/{job['output_file_id']}/content").text
    rows = {row["custom_id"]: row for row in map(json.loads, output.splitlines())}
    return [rows[f"r{i}"]["response"]["body"] for i in range(len(bodies))]
