"""Every request but the health probes needs a valid identity (pure ASGI middleware)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.credentials import authenticate, presented_key
from api.auth.identity import Identity
from api.auth.identity import Scope as KeyScope
from api.errors import APIError
from api.gateway import gateway_of
from api.http.rejections import reject

PUBLIC_PATHS = frozenset({"/health/live", "/health/ready"})


class AuthMiddleware:
    """Resolves ``Authorization: Bearer`` or ``X-API-Key`` to ``scope["state"]["identity"]``.

    The credential is an API key, or, with ``auth.jwt`` configured, an OIDC/JWT bearer token.

    401 ``invalid_api_key`` without a valid, unexpired, unrevoked key; 403 when the key lacks
    the scope the path needs. ``/v1/admin`` lets an organization's admin in; what it may reach
    there is decided by the routes (``api/auth/roles.py``).
    """

    def __init__(self, app: ASGIApp, public_paths: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        try:
            identity = await self._authenticate(scope)
        except APIError as error:
            if scope["type"] == "websocket":
                # Closing before the handshake makes the server answer 403.
                await send({"type": "websocket.close", "code": 1008, "reason": error.code})
            else:
                await reject(error, scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Identity:
        key = presented_key(Headers(scope=scope))
        return await authenticate(gateway_of(scope), key, required_scope(scope["path"]))


def required_scope(path: str) -> KeyScope:
    if path.startswith("/v1/admin"):
        return KeyScope.ADMIN
    if path == "/metrics":
        return KeyScope.METRICS
    return KeyScope.INFERENCE


def identity_in(scope: Scope) -> Identity | None:
    identity: Identity | None = scope.get("state", {}).get("identity")
    return identity
