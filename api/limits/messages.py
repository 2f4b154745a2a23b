"""Admission and usage for each message of a WebSocket connection.

The HTTP middleware sees a WebSocket connection once, at its handshake (where it is
authenticated). Every request sent over the connection is admitted here like an HTTP
request (model allowlist, rate limits, quotas, concurrency), settled against its real usage
and recorded, however it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import anyio
from starlette.types import Scope
from starlette.websockets import WebSocketDisconnect

from api.auth.middleware import identity_in
from api.errors import APIError, AuthenticationError, PermissionDeniedError
from api.gateway import gateway_of, services_in
from api.ids import unique_hex
from api.limits.estimate import estimate
from api.limits.headers import rate_limit_headers, rejection
from api.limits.rules import plan_admission
from api.storage.time import utcnow
from api.usage.meter import RequestUsage
from api.usage.middleware import journal_admission, record_usage

# The status recorded for a request whose client left mid-stream (nginx's convention).
CLIENT_CLOSED = 499


@contextlib.asynccontextmanager
async def metered_message(
    scope: Scope, message: str, request_id: str
) -> AsyncIterator[RequestUsage]:
    """Admit one message's request (raising the HTTP route's ``APIError``), then meter it."""
    identity = identity_in(scope)
    if identity is None:
        raise AuthenticationError("This connection is not authenticated.")
    gateway = gateway_of(scope)
    demand = estimate(message.encode(), services_in(scope).registry)
    if demand.model is not None and not identity.allows_model(demand.model):
        raise PermissionDeniedError(
            f"This API key has no access to the model '{demand.model}'.",
            param="model",
            code="model_not_allowed",
        )
    lease_id = unique_hex()
    plan = plan_admission(identity, demand, utcnow(), gateway.settings.limits.lease_ttl_s)
    decision = await gateway.limiter.admit(plan, lease_id, revoked_key=identity.key_id)
    if decision.revoked:
        gateway.resolver.forget(identity.key_id)
        raise AuthenticationError("This API key has been revoked.")
    if not decision.allowed:
        gateway.metrics.rate_limited(demand.model, decision.blocked)
        raise rejection(decision, rate_limit_headers(plan, decision))
    usage = RequestUsage(model=demand.model, reserved_tokens=demand.tokens)
    journal_admission(scope, identity, usage, request_id, plan, lease_id, status=200)
    # The connection's sends journal this message's progress (api/usage/middleware.py).
    scope.setdefault("state", {})["usage"] = usage
    started, status = time.perf_counter(), 200
    try:
        yield usage
    except APIError as error:
        status = error.status_code
        raise
    except WebSocketDisconnect:
        status = CLIENT_CLOSED
        raise
    except BaseException:
        status = 500
        raise
    finally:
        if usage.slot is not None:
            usage.slot.settling()
        # Shielded: a connection closed mid-stream still settles and records its usage.
        with anyio.CancelScope(shield=True):
            await gateway.limiter.settle(plan, lease_id, usage.total())
        record_usage(scope, identity, usage, request_id, status, started)
