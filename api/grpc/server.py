"""The gRPC server of the API process: ``llm.v1.LLMService``, reflection, and the standard
health service (``grpc.health.v1``) with one status per model.

Started by the app's lifespan when ``grpc.port`` is set, on the same gateway and services
as the HTTP routes. Health: a service name of a public model id is SERVING while that model
serves; "" (the server) and ``llm.v1.LLMService`` are SERVING while the API is not draining and
at least one model serves, as ``/health/ready?require=any``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from api.gateway import Gateway
from api.grpc import llm_service_pb2_grpc as pb_grpc
from api.grpc.calls import Calls
from api.grpc.service import SERVICE, LLMService
from api.routes.health import model_status, serving
from api.services import Services
from api.settings import Settings

logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcApi:
    """The running server and the task that keeps its health statuses current."""

    def __init__(self, settings: Settings, gateway: Gateway, services: Services) -> None:
        options = settings.grpc
        self._services = services
        self._interval_s = options.health_interval_s
        # Bounded like an HTTP body: gRPC itself refuses larger messages (RESOURCE_EXHAUSTED).
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", options.max_send_message_bytes),
            ],
            maximum_concurrent_rpcs=options.max_concurrent_rpcs,
        )
        servicer = LLMService(Calls(gateway, services))
        pb_grpc.add_LLMServiceServicer_to_server(servicer, self.server)  # type: ignore[no-untyped-call]
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)
        names = (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self.server)
        self.port = self.server.add_insecure_port(f"{options.host or settings.host}:{options.port}")
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        await self.refresh_health()
        self._watcher = asyncio.create_task(self._watch_health())
        logger.info("gRPC API listening", extra={"port": self.port})

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, and give running ones ``grace_s`` to end."""
        await self._health.enter_graceful_shutdown()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.server.stop(grace_s)

    async def refresh_health(self) -> None:
        registry = self._services.registry
        routes = registry.triton_models()
        readiness = await self._services.backend.readiness(routes)
        for route in routes:
            for model in registry.served_by(route):
                await self._set(model, model_status(readiness, route) == "ready")
        overall = serving(readiness, "any")
        await self._set("", overall)
        await self._set(SERVICE, overall)

    async def _set(self, service: str, ok: bool) -> None:
        await self._health.set(service, SERVING if ok else NOT_SERVING)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh_health()
            except Exception:
                logger.exception("gRPC health refresh failed")


async def start_grpc_api(
    settings: Settings, gateway: Gateway, services: Services
) -> GrpcApi | None:
    """The started gRPC API, or None when ``grpc.port`` is not set."""
    if settings.grpc.port is None:
        return None
    api = GrpcApi(settings, gateway, services)
    await api.start()
    return api
