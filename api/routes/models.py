"""``GET /v1/models`` and ``GET /v1/models/{model}``."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from api.auth.middleware import identity_in
from api.deprecation import model_headers
from api.errors import ModelNotFoundError
from api.http.json_response import json_response
from api.schemas.models import ModelCard, ModelList
from api.services import Services, services_of
from api.settings import ModelKind, ServedModel

_CAPABILITIES = {ModelKind.CHAT: ["chat", "completion"], ModelKind.EMBEDDING: ["embeddings"]}


def card(model: ServedModel, created: int, services: Services | None = None) -> ModelCard:
    capabilities = _CAPABILITIES[model.kind] + (["tools"] if model.supports_tools else [])
    return ModelCard(
        id=model.id,
        created=created,
        owned_by=model.owned_by,
        context_length=model.context_length,
        capabilities=capabilities,
        aliases=model.aliases,
        parameters=model.parameters,
        quantization=model.quantization,
        embedding_dimensions=model.embedding_dimensions,
        deprecated=bool(model.deprecated_names),
        status=None if services is None else _status(services, model),
    )


def _status(services: Services, model: ServedModel) -> Literal["ready", "unavailable"]:
    """From the model's breaker (no call to Triton): open or unresponsive is unavailable."""
    degraded = services.resilience.breakers[model.triton_model].degraded()
    return "ready" if degraded is None else "unavailable"


async def list_models(request: Request) -> Response:
    """The served models the caller's key may use (its model allowlist, if any)."""
    services = services_of(request)
    created = services.started_at
    identity = identity_in(request.scope)
    visible = [m for m in services.registry if identity is None or identity.allows_model(m.id)]
    return json_response(ModelList(data=[card(model, created, services) for model in visible]))


async def retrieve_model(request: Request) -> Response:
    services = services_of(request)
    name = request.path_params["model"]
    model = services.registry.get(name)
    identity = identity_in(request.scope)
    if identity is not None and not identity.allows_model(model.id):
        # As OpenAI: a model the key cannot use looks like one that does not exist.
        raise ModelNotFoundError(name)
    return json_response(
        card(model, services.started_at, services), headers=model_headers(model, name)
    )
