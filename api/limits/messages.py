"""Admission and usage for each message of a WebSocket connection.

The HTTP middleware sees a WebSocket connection once, at its handshake (where it is
authenticated). Every request sent over the connection is admitted here like an HTTP
request (model allowlist, rate limits, quotas, concurrency), settled against its real usage
and recorded, however it ends (``api.limits.metered``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.types import Scope
from starlette.websockets import WebSocketDisconnect

from api.auth.middleware import identity_in
from api.errors import AuthenticationError
from api.gateway import gateway_of, services_in
from api.limits.metered import Caller, metered_request
from api.usage.meter import RequestUsage


@contextlib.asynccontextmanager
async def metered_message(
    scope: Scope, message: str, request_id: str
) -> AsyncIterator[RequestUsage]:
    """Admit one message's request (raising the HTTP route's ``APIError``), then meter it."""
    identity = identity_in(scope)
    if identity is None:
        raise AuthenticationError("This connection is not authenticated.")
    caller = Caller(identity, scope["path"], request_id)
    registry = services_in(scope).registry
    async with metered_request(
        gateway_of(scope), registry, caller, message.encode(), (WebSocketDisconnect,)
    ) as metered:
        # The connection's sends journal this message's progress (api/usage/middleware.py).
        scope.setdefault("state", {})["usage"] = metered.usage
        yield metered.usage
