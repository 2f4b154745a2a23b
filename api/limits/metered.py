"""Admission and usage of one request that no HTTP middleware wraps: a WebSocket message or a
gRPC call. It is admitted like an HTTP request (``api.limits.gate``), settled against its
real usage and recorded, however it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from api.auth.identity import Identity
from api.errors import APIError
from api.gateway import Gateway
from api.limits.estimate import estimate
from api.limits.gate import admit, settle
from api.registry import ModelRegistry
from api.usage.meter import RequestUsage
from api.usage.middleware import journal_admission, record_usage

# The status recorded for a request whose client left mid-stream (nginx's convention).
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class MeteredRequest:
    """What the transport fills (``usage``) and may send back (``headers``: rate limits)."""

    usage: RequestUsage
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and where it was sent (its usage record's endpoint)."""

    identity: Identity
    endpoint: str
    request_id: str


@contextlib.asynccontextmanager
async def metered_request(
    gateway: Gateway,
    registry: ModelRegistry,
    caller: Caller,
    body: bytes,
    client_gone: tuple[type[BaseException], ...],
) -> AsyncIterator[MeteredRequest]:
    """Admit the request of JSON ``body`` (raising the HTTP route's ``APIError``), then meter
    it; an exception of ``client_gone`` records it as the client's leaving (499)."""
    identity = caller.identity
    demand = estimate(body, registry)
    admitted = await admit(gateway, identity, demand)
    usage = RequestUsage(model=demand.model, reserved_tokens=demand.tokens)
    journal_admission(
        gateway,
        caller.endpoint,
        identity,
        usage,
        caller.request_id,
        admitted.plan,
        admitted.lease_id,
        status=200,
    )
    started, status = time.perf_counter(), 200
    try:
        yield MeteredRequest(usage, admitted.headers)
    except APIError as error:
        status = error.status_code
        raise
    except client_gone:
        status = CLIENT_CLOSED
        raise
    except BaseException:
        status = 500
        raise
    finally:
        if usage.slot is not None:
            usage.slot.settling()
        await settle(gateway, admitted, usage.total())
        record_usage(gateway, caller.endpoint, identity, usage, caller.request_id, status, started)
