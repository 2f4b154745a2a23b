"""Responses stream events on the wire: ``event: <type>`` and ``data: <json>`` per event,
each with its ``sequence_number``, as OpenAI sends them (no ``[DONE]`` at the end)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import orjson

from api.responses.output import Event


def numbered(event: Event, number: int) -> Event:
    event["sequence_number"] = number
    return event


def event_frame(event: Event) -> bytes:
    return sse_frame(str(event["type"]), orjson.dumps(event))


def sse_frame(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


async def frames(events: AsyncIterator[Event], first: int = 0) -> AsyncGenerator[bytes, None]:
    """SSE frames of ``events``, numbered from ``first``."""
    number = first
    async for event in events:
        yield event_frame(numbered(event, number))
        number += 1
