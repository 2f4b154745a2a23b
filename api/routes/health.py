"""Liveness and readiness probes (no authentication, no model work)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.responses import json_response
from api.services import services_of


async def live(request: Request) -> Response:
    return json_response({"status": "live"})


async def ready(request: Request) -> Response:
    """200 only when Triton and every model the API routes to are ready."""
    services = services_of(request)
    readiness = await services.backend.readiness(services.registry.triton_models())
    body = {
        "status": "ready" if readiness.ready else "not_ready",
        "triton": {"ready": readiness.server_ready, "detail": readiness.detail},
        "models": readiness.models,
    }
    return json_response(body, status_code=200 if readiness.ready else 503)
