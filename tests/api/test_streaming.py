"""The SSE writer: what goes out in which write, and how a stream ends."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from api.errors import BackendError
from api.http.sse import DONE, EventStreamResponse, frame, sse_frames
from tests.api.asgi import post


async def payloads(*items: bytes, fail: Exception | None = None) -> AsyncGenerator[bytes, None]:
    for item in items:
        yield item
    if fail is not None:
        raise fail


async def collect(frames: AsyncGenerator[bytes, None]) -> list[bytes]:
    return [chunk async for chunk in frames]


async def test_lead_payloads_go_out_with_the_next_one() -> None:
    frames = await collect(sse_frames(payloads(b"role0", b"role1", b"a", b"b"), lead=2))
    assert frames == [frame(b"role0") + frame(b"role1") + frame(b"a"), frame(b"b")]


async def test_without_lead_every_payload_is_its_own_write() -> None:
    frames = await collect(sse_frames(payloads(b"a", b"b")))
    assert frames == [frame(b"a"), frame(b"b")]


async def test_an_error_goes_out_with_what_was_held() -> None:
    failure = BackendError("engine gone")
    frames = await collect(sse_frames(payloads(b"role", fail=failure), lead=1))
    assert frames == [frame(b"role") + frame(failure.to_json())]


async def test_an_unexpected_failure_becomes_an_error_event() -> None:
    frames = await collect(sse_frames(payloads(b"a", fail=RuntimeError("bug"))))
    failure = BackendError("The stream failed; the reply is incomplete.")
    assert frames == [frame(b"a"), frame(failure.to_json())]


async def test_the_response_ends_with_done_in_the_last_write() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("the response must not read from the client")

    response = EventStreamResponse(sse_frames(payloads(b"a")), {"X-Model": "m"})
    await response({"type": "http"}, receive, send)
    start, *bodies = sent
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert headers[b"x-model"] == b"m" and headers[b"cache-control"] == b"no-cache"
    assert [(m["body"], m["more_body"]) for m in bodies] == [(frame(b"a"), True), (DONE, False)]


async def test_a_cancelled_response_closes_its_events() -> None:
    closed = []

    async def endless() -> AsyncGenerator[bytes, None]:
        try:
            while True:
                yield b"x"
        finally:
            closed.append(True)

    async def send(message: Message) -> None:
        if message.get("body") == frame(b"x"):
            raise OSError("client gone")

    response = EventStreamResponse(sse_frames(endless()), {})
    with pytest.raises(OSError):
        await response({"type": "http"}, lambda: None, send)  # type: ignore[arg-type]
    assert closed == [True]


def test_a_chat_stream_sends_its_role_chunks_with_the_first_text(client: TestClient) -> None:
    chat = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
    sent = post(
        client, "/v1/chat/completions", json.dumps({**chat, "stream": True, "n": 2}).encode()
    )
    start, first, *rest = sent
    assert start["status"] == 200
    chunks = [json.loads(part) for part in first["body"].decode().split("data: ") if part]
    assert [c["choices"][0]["delta"].get("role") for c in chunks] == [
        "assistant",
        "assistant",
        None,
    ]
    assert chunks[2]["choices"][0]["delta"]["content"]
    assert (rest[-1]["body"], rest[-1]["more_body"]) == (DONE, False)
    assert all(message["more_body"] for message in [first, *rest[:-1]])
