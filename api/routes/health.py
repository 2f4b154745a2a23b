"""Liveness and readiness probes (no authentication, no model work)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.backend.types import Readiness
from api.errors import InvalidRequestError
from api.http.json_response import json_response
from api.services import Services, services_of


async def live(request: Request) -> Response:
    return json_response({"status": "live"})


async def ready(request: Request) -> Response:
    """200 only when Triton and every model the API routes to are ready.

    A model whose circuit breaker is open is listed under ``degraded`` (and makes this 503);
    so is a draining API, so that load balancers stop sending it work. ``served_models``
    says, per public model id, whether it serves (``ready``) or why not: with models on
    several Triton endpoints, one endpoint down names its models and leaves the others
    ``ready``. ``?model=ID`` asks about that one model only (unknown ids: 404).
    ``?require=any`` is the API pod's own readiness (the chart's probe): 200 while it is not
    draining and at least one model serves, so that one model group down does not take the
    API out of its Service for the groups that still serve.
    """
    services = services_of(request)
    routes = _routes(services, request.query_params.get("model"))
    readiness = await services.backend.readiness(routes)
    body = {
        "status": _status(readiness),
        "triton": {"ready": readiness.server_ready, "detail": readiness.detail},
        "models": readiness.models,
        "degraded": readiness.degraded,
        "served_models": {
            model: model_status(readiness, route)
            for route in routes
            for model in services.registry.served_by(route)
        },
    }
    if readiness.replicas:
        body["replicas"] = readiness.replicas
    ok = serving(readiness, request.query_params.get("require", "all"))
    return json_response(body, status_code=200 if ok else 503)


def serving(readiness: Readiness, require: str) -> bool:
    """Whether the API serves: every model (``all``), or at least one (``any``, not draining);
    the gRPC health service reports the same (api/grpc/server.py)."""
    if require == "all":
        return readiness.ready
    if require == "any":
        return not readiness.draining and any(
            ready and route not in readiness.degraded for route, ready in readiness.models.items()
        )
    raise InvalidRequestError("'require' must be 'all' or 'any'.", param="require")


def _routes(services: Services, model: str | None) -> list[str]:
    if model is None:
        return services.registry.triton_models()
    return [services.registry.get(model).triton_model]


def model_status(readiness: Readiness, route: str) -> str:
    """``ready``, ``draining``, a breaker state, or ``unavailable``."""
    if readiness.draining:
        return "draining"
    if route in readiness.degraded:
        return readiness.degraded[route]
    return "ready" if readiness.models.get(route, False) else "unavailable"


def _status(readiness: Readiness) -> str:
    if readiness.ready:
        return "ready"
    if readiness.draining:
        return "draining"
    if readiness.server_ready and all(readiness.models.values()):
        return "degraded"
    return "not_ready"
