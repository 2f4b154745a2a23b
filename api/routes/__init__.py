"""HTTP routes: parse -> translate -> call the backend -> render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


def by_method(**handlers: Endpoint) -> Endpoint:
    """One endpoint for a path served by several methods (``GET=..., POST=...``)."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return dispatch
