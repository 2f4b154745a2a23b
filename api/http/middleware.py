"""Pure ASGI middleware (safe on streaming responses)."""

from __future__ import annotations

import logging
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import APIError, BackendError
from api.http.rejections import reject
from api.ids import unique_hex

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# A client-sent id is echoed only if it is short and plain: it ends up in logs and headers.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Accepts or generates ``X-Request-ID``, stores it in the request state and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or unique_hex()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class UnhandledErrorMiddleware:
    """Answers an exception nothing else handled with the error envelope, from inside the
    request-id middleware (so the answer carries ``x-request-id``), and does not re-raise it.

    Starlette's own last-resort handler sits outside every middleware and re-raises, and an
    exception reaching the server makes it close the connection. Here the client gets a
    complete 500 (or the ``APIError``'s own status, if one escaped from a middleware) and
    keeps its keep-alive connection. Only a failure after the response began must end the
    connection: the response cannot be completed, so that one is re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = False

        async def watch(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            error = exc if isinstance(exc, APIError) else None
            if error is None:
                logger.exception("unhandled error", exc_info=exc)
                error = BackendError(
                    "The server had an error while processing your request.",
                    code="internal_error",
                )
            if complete:
                return
            if started:
                raise
            await reject(error, scope, receive, send)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.match(candidate) else None
    return None
