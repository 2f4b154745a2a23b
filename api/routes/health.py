"""Liveness and readiness probes (no authentication, no model work)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.backend.types import Readiness
from api.responses import json_response
from api.services import services_of


async def live(request: Request) -> Response:
    return json_response({"status": "live"})


async def ready(request: Request) -> Response:
    """200 only when Triton and every model the API routes to are ready.

    A model whose circuit breaker is open is listed under ``degraded`` (and makes this 503);
    so is a draining API, so that load balancers stop sending it work.
    """
    services = services_of(request)
    readiness = await services.backend.readiness(services.registry.triton_models())
    body = {
        "status": _status(readiness),
        "triton": {"ready": readiness.server_ready, "detail": readiness.detail},
        "models": readiness.models,
        "degraded": readiness.degraded,
    }
    return json_response(body, status_code=200 if readiness.ready else 503)


def _status(readiness: Readiness) -> str:
    if readiness.ready:
        return "ready"
    if readiness.draining:
        return "draining"
    if readiness.server_ready and all(readiness.models.values()):
        return "degraded"
    return "not_ready"
