"""The one owner of the Server-Sent Events protocol.

Frames are ``data: <json>\\n\\n``. A failure after the 200 has gone out becomes an error event
in OpenAI's shape; every stream ends with ``data: [DONE]``. Closing the event source (client
gone, error) closes the backend stream, which cancels the Triton request.

Each frame is one write to the client's socket, the largest per-token cost the API adds, so
nothing is sent on its own that can go with the next frame: a chat's role chunks leave with its
first text, and ``[DONE]`` with the end of the body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.errors import APIError, BackendError

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


async def sse_frames(
    events: AsyncGenerator[bytes, None], lead: int = 0
) -> AsyncGenerator[bytes, None]:
    """Wrap JSON payloads as SSE frames; errors become an error event.

    The first ``lead`` payloads are held and sent with the one after them: a chat's role
    chunks are ready at once, and sending them alone would cost a write before the first text.
    """
    held = b""
    try:
        async for payload in events:
            held += frame(payload)
            if lead:
                lead -= 1
                continue
            yield held
            held = b""
    except APIError as exc:
        held += frame(exc.to_json())
    except Exception:
        logger.exception("stream failed after the response started")
        held += frame(BackendError("The stream failed; the reply is incomplete.").to_json())
    finally:
        await events.aclose()
    if held:
        yield held


class EventStreamResponse(Response):
    """A 200 ``text/event-stream`` of ``frames``, then ``end`` (``[DONE]``) with the end of
    the body.

    Lighter than Starlette's StreamingResponse, which runs every stream in a task group with a
    second task listening for the client to leave. Here CancelOnDisconnectMiddleware, which
    listens anyway, cancels the handler instead; the frames are closed on the way out, which
    closes the backend stream and cancels the Triton request.
    """

    def __init__(
        self, frames: AsyncGenerator[bytes, None], headers: Mapping[str, str], end: bytes = DONE
    ) -> None:
        self.status_code = 200
        self.background = None
        self._frames = frames
        # The Responses API's streams end with their last event, no ``[DONE]``.
        self._end = end
        merged = {**SSE_HEADERS, **{name.lower(): value for name, value in headers.items()}}
        self.raw_headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in merged.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            async for chunk in self._frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await self._frames.aclose()
        await send({"type": "http.response.body", "body": self._end, "more_body": False})


def sse_response(
    events: AsyncGenerator[bytes, None], headers: Mapping[str, str], lead: int = 0
) -> EventStreamResponse:
    """The SSE response of ``events`` (JSON payloads); see :func:`sse_frames` for ``lead``."""
    return EventStreamResponse(sse_frames(events, lead), headers)
