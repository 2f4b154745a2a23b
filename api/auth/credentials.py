"""Authenticating a presented credential, whatever carried it (HTTP headers, gRPC metadata).

The ASGI middleware (``api.auth.middleware``) and the gRPC server (``api.grpc``) both call
``authenticate``: one rule for API keys and JWTs, scopes and expiry on every transport.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.auth.identity import Identity
from api.auth.identity import Scope as KeyScope
from api.auth.tokens import looks_like_jwt
from api.errors import AuthenticationError, PermissionDeniedError
from api.gateway import Gateway


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The credential of ``Authorization: Bearer`` or ``X-API-Key`` (lower-case names)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


async def authenticate(gateway: Gateway, key: str | None, scope_needed: KeyScope) -> Identity:
    """The identity of ``key``: 401 without a valid, unexpired, unrevoked key (or JWT), 403
    when it lacks ``scope_needed``."""
    if key is None:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
            "or in the 'X-API-Key' header."
        )
    if gateway.tokens is not None and looks_like_jwt(key):
        identity = await gateway.tokens.identity(key)
    else:
        identity = await gateway.resolver.resolve(key)
    if identity is None or identity.expired():
        raise AuthenticationError("Incorrect API key provided.")
    if not identity.has_scope(scope_needed):
        raise PermissionDeniedError(f"This API key lacks the '{scope_needed}' scope.")
    return identity
