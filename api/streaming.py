"""The one owner of the Server-Sent Events protocol.

Frames are ``data: <json>\\n\\n``. A failure after the 200 has gone out becomes an error event
in OpenAI's shape; every stream ends with ``data: [DONE]``. Closing the event source (client
gone, error) closes the backend stream, which cancels the Triton request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.responses import StreamingResponse

from api.errors import APIError, BackendError

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


async def sse_frames(events: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """Wrap JSON payloads as SSE frames; errors become an error event; always [DONE]."""
    try:
        async for payload in events:
            yield frame(payload)
    except APIError as exc:
        yield frame(exc.to_json())
    except Exception:
        logger.exception("stream failed after the response started")
        yield frame(BackendError("The stream failed; the reply is incomplete.").to_json())
    finally:
        await events.aclose()
    yield DONE


def sse_response(events: AsyncGenerator[bytes, None], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(
        sse_frames(events),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **headers},
    )
