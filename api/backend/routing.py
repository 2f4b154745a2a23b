"""Routing by model to its Triton endpoint: many model groups, each on its own Triton(s).

A served model's ``route`` (``ServedModel.route``) names its endpoint and its Triton model:
``chat/ensemble`` is the model ``ensemble`` on the endpoint ``chat``; a bare name is on the
default endpoint (``triton.url``). The registry hands routes to the request path as the
model's ``triton_model``, so the guards above this backend (breakers, admission gates,
deadlines, the probe) keep one state per endpoint and model, and routes never see endpoints.
Below it, each endpoint is a ``ReplicaSet`` (or, for one fixed address, a plain
``TritonGrpcBackend``, exactly as before endpoints existed).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence

from api.backend.discovery import resolver_for
from api.backend.protocol import InferenceBackend
from api.backend.replica_set import ReplicaFactory, ReplicaSet
from api.backend.triton_grpc import TritonGrpcBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendError
from api.settings import DEFAULT_ENDPOINT, Settings, TritonEndpoint


def split_route(route: str) -> tuple[str, str]:
    """``(endpoint, triton_model)`` of a route (see ``ServedModel.route``)."""
    endpoint, _, model = route.rpartition("/")
    return endpoint or DEFAULT_ENDPOINT, model


class RoutingBackend:
    """``InferenceBackend`` that sends each call to the endpoint its route names."""

    def __init__(self, endpoints: Mapping[str, InferenceBackend]) -> None:
        self.endpoints = dict(endpoints)

    def _endpoint(self, route: str) -> tuple[InferenceBackend, str]:
        name, model = split_route(route)
        backend = self.endpoints.get(name)
        if backend is None:
            # Settings validation makes every served model's endpoint known.
            raise BackendError(f"No Triton endpoint named '{name}' is configured.")
        return backend, model

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        backend, model = self._endpoint(request.triton_model)
        stream = backend.generate(dataclasses.replace(request, triton_model=model))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        backend, model = self._endpoint(triton_model)
        return await backend.embed(model, texts, request_id, truncate=truncate)

    async def readiness(self, models: Sequence[str]) -> Readiness:
        """Each endpoint asked for its own models at once; models keyed by route as asked.

        Triton counts as ready only when every endpoint is, but a model's own readiness is
        its endpoint's: one endpoint down leaves the others' models ready.
        """
        grouped: dict[str, list[tuple[str, str]]] = {}
        for route in models:
            name, model = split_route(route)
            grouped.setdefault(name, []).append((route, model))
        names = [name for name in grouped if name in self.endpoints]
        answers = await asyncio.gather(
            *(self.endpoints[name].readiness([m for _, m in grouped[name]]) for name in names)
        )
        by_name = dict(zip(names, answers, strict=True))
        ready: dict[str, bool] = {}
        details, replicas = [], {}
        for name, routes in grouped.items():
            answer = by_name.get(name) or Readiness(server_ready=False, detail="not configured")
            for route, model in routes:
                ready[route] = answer.server_ready and answer.models.get(model, False)
            if answer.detail:
                details.append(answer.detail if len(grouped) == 1 else f"{name}: {answer.detail}")
            replicas.update(answer.replicas)
        return Readiness(
            server_ready=all(a.server_ready for a in answers) and len(names) == len(grouped),
            models=ready,
            detail="; ".join(details),
            replicas=replicas,
        )

    async def close(self) -> None:
        for backend in self.endpoints.values():
            await backend.close()


def serving_replicas(backend: InferenceBackend) -> Callable[[str], int]:
    """How many replicas serve a route now (admission gives each one engine's worth of
    slots): those in rotation behind its endpoint, 1 for a fixed address."""

    def count(endpoint: InferenceBackend) -> int:
        return endpoint.serving if isinstance(endpoint, ReplicaSet) else 1

    if not isinstance(backend, RoutingBackend):
        return lambda route: count(backend)

    def for_route(route: str) -> int:
        name, _ = split_route(route)
        endpoint = backend.endpoints.get(name)
        return 1 if endpoint is None else count(endpoint)

    return for_route


def replica_sets(backend: InferenceBackend) -> list[ReplicaSet]:
    """The balanced endpoints behind ``backend`` (none for a fixed address)."""
    if isinstance(backend, ReplicaSet):
        return [backend]
    if isinstance(backend, RoutingBackend):
        return [e for e in backend.endpoints.values() if isinstance(e, ReplicaSet)]
    return []


def endpoint_settings(settings: Settings) -> dict[str, TritonEndpoint]:
    """Every configured endpoint; ``default`` is ``triton.url`` unless configured by name."""
    return {
        DEFAULT_ENDPOINT: TritonEndpoint(target=settings.triton.url),
        **settings.triton.endpoints,
    }


def build_routing_backend(
    settings: Settings, factory: ReplicaFactory | None = None
) -> InferenceBackend:
    """One backend per endpoint that a served model uses; the bare endpoint backend when
    there is only the default one with one fixed address (no routing layer, as before)."""

    def grpc_replica(address: str) -> InferenceBackend:
        return TritonGrpcBackend(settings.triton, address)

    make = grpc_replica if factory is None else factory
    served: dict[str, set[str]] = {}
    for model in settings.models:
        served.setdefault(model.endpoint or DEFAULT_ENDPOINT, set()).add(model.triton_model)
    configured = endpoint_settings(settings)
    endpoints: dict[str, InferenceBackend] = {}
    for name, models in served.items():
        resolver, dynamic, fixed = resolver_for(configured[name])
        if fixed is not None:
            endpoints[name] = make(fixed)
        else:
            endpoints[name] = ReplicaSet(
                name, resolver, make, models, settings.triton, dynamic=dynamic
            )
    if list(endpoints) == [DEFAULT_ENDPOINT]:
        return endpoints[DEFAULT_ENDPOINT]
    return RoutingBackend(endpoints)
