"""Cancel a request's work when its client goes away before the response has been sent.

Nothing else listens for the disconnect: a non-streaming completion or an embedding would
keep Triton busy for a client that is gone, and a stream would go on generating into a closed
socket. This middleware watches for the disconnect once the body has been read and cancels the
handler, so a Triton call never outlives its HTTP request: a stream's frames are closed on the
way out, which cancels the Triton request (api.http.sse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

# nginx's "client closed request": what access logs, metrics and usage records should say
# about such a request instead of a 500 (the client never sees it).
CLIENT_CLOSED_REQUEST = 499


class CancelOnDisconnectMiddleware:
    """Pure ASGI middleware: runs the app as a task and cancels it if the client leaves early."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        response_started = response_sent = False

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_read.set()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started, response_sent
            if message["type"] == "http.response.start":
                response_started = True
            elif not message.get("more_body", False):
                response_sent = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, tracked_receive, tracked_send))
        # The watcher reads only after the app has read the whole body: it must never take a
        # body message away from the app.
        watcher = asyncio.ensure_future(_disconnected(receive, body_read))
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and response_sent:
                # All of it went out (the server reports the end as a disconnect): the handler
                # is only tidying up, which must not be cut short.
                await asyncio.wait({handler})
            if not handler.done():
                logger.info("client disconnected before the response ended; cancelling its work")
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await handler
                if not response_started:
                    await _closed_by_client(send)
                return
        finally:
            watcher.cancel()
            if not handler.done():
                # We were cancelled ourselves (server shutdown): let the handler clean up.
                handler.cancel()
                await asyncio.wait({handler})
        handler.result()


async def _closed_by_client(send: Send) -> None:
    """Answer 499 for the middleware outside this one; the server drops it (client gone)."""
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive, body_read: asyncio.Event) -> None:
    await body_read.wait()
    while (await receive())["type"] != "http.disconnect":
        pass
