"""Admission of one request, whatever carried it: model allowlist, rate limits, quotas and
concurrency before it runs, settlement against its real usage after.

The HTTP middleware (``api.limits.middleware``), each WebSocket message and each gRPC call
(``api.limits.metered``) go through these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from api.auth.identity import Identity
from api.errors import AuthenticationError, PermissionDeniedError
from api.gateway import Gateway
from api.ids import unique_hex
from api.limits.headers import rate_limit_headers, rejection
from api.limits.rules import Demand, Plan, plan_admission
from api.storage.time import utcnow


@dataclass(frozen=True, slots=True)
class Admitted:
    """An admitted request: what it reserved (settled by ``settle``) and the rate-limit
    values its reply carries (HTTP headers, gRPC metadata)."""

    plan: Plan
    lease_id: str
    headers: dict[str, str]


async def admit(gateway: Gateway, identity: Identity, demand: Demand) -> Admitted:
    """Reserve ``demand`` for ``identity``; raises the ``APIError`` of a refusal (403 model
    not allowed, 401 revoked key, 429 limit with its retry-after)."""
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
    headers = rate_limit_headers(plan, decision)
    if not decision.allowed:
        gateway.metrics.rate_limited(demand.model, decision.blocked)
        raise rejection(decision, headers)
    return Admitted(plan, lease_id, headers)


async def settle(gateway: Gateway, admitted: Admitted, tokens: int) -> None:
    """Give back the reservation against the ``tokens`` really used, and the lease."""
    # Shielded: a cancelled request must still give back its reservation and lease.
    with anyio.CancelScope(shield=True):
        await gateway.limiter.settle(admitted.plan, admitted.lease_id, tokens)
