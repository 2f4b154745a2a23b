"""Answering from pure ASGI middleware, which sits outside the exception handlers."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from api.errors import APIError
from api.http.json_response import json_response


async def reject(error: APIError, scope: Scope, receive: Receive, send: Send) -> None:
    """Send ``error`` as OpenAI's error envelope with its status and headers."""
    response = json_response(error.to_dict(), status_code=error.status_code, headers=error.headers)
    await response(scope, receive, send)
