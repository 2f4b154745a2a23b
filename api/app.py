"""Application factory: routes, middleware (as data), error rendering and lifetime."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from api.auth.middleware import AuthMiddleware
from api.backend.admission import Admission, AdmissionBackend, model_capacities
from api.backend.breaker import BreakerBackend, BreakerBoard, BreakerPolicy
from api.backend.deadline import DeadlineBackend, IdleBounds, model_timeouts
from api.backend.probe import ModelProber, ProbeTarget
from api.backend.protocol import InferenceBackend
from api.backend.retry import RetryBackend
from api.backend.routing import build_routing_backend, replica_sets, serving_replicas
from api.batches.state import build_stores, start_worker
from api.deprecation import DeprecatedRoutesMiddleware
from api.embedding_service import EmbeddingService, build_embedding_cache
from api.errors import APIError, BackendError, MethodNotAllowedError, NotFoundError
from api.gateway import open_gateway
from api.gc_tuning import tune_gc
from api.grpc.server import start_grpc_api
from api.http.disconnect import CancelOnDisconnectMiddleware
from api.http.json_response import json_response
from api.http.middleware import RequestIdMiddleware, UnhandledErrorMiddleware
from api.limits.middleware import AdmissionMiddleware, IpLimitMiddleware
from api.logs import AccessLogMiddleware
from api.metrics import MetricsMiddleware, metrics_endpoint
from api.moderation.hook import build_content_filter
from api.registry import ModelRegistry
from api.resilience import Resilience
from api.resilience_metrics import register as register_resilience
from api.responses.background import BackgroundRunner
from api.routes import (
    admin,
    batches,
    by_method,
    chat,
    completions,
    conversation_messages,
    conversations,
    docs,
    embeddings,
    files,
    health,
    models,
    moderations,
    responses,
    usage,
    websocket,
)
from api.services import Services
from api.settings import Settings
from api.usage.middleware import UsageMiddleware

logger = logging.getLogger(__name__)

BackendFactory = Callable[[Settings], InferenceBackend]


def create_app(settings: Settings, backend_factory: BackendFactory | None = None) -> Starlette:
    """Build the app; the backend is created on start-up and closed on shutdown."""
    factory = backend_factory or _triton_backend

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backend = factory(settings)
        app.state.gateway = gateway = await open_gateway(settings)
        # Requests a crashed process left in flight: settled from what they had delivered.
        await gateway.recorder.recover(gateway.limiter, settings.usage.prices)
        app.state.services = build_services(settings, backend)
        # Breaker states and admission gates, read live at every scrape of /metrics.
        register_resilience(app.state.gateway.metrics.registry, app.state.services.resilience)
        app.state.services.resilience.start()
        app.state.batch_stores = build_stores(app.state.gateway.engine, settings)
        worker = start_worker(app.state.services, app.state.batch_stores, app.state.gateway)
        # The gRPC API (grpc.port) on the same gateway and services as the HTTP routes.
        app.state.grpc_api = grpc_api = await start_grpc_api(settings, gateway, app.state.services)
        # Background responses; ends those a dead process left running, purges expired ones.
        app.state.responses = BackgroundRunner(gateway.engine, settings.responses)
        await app.state.responses.start()
        # Last step of start-up: everything alive now is frozen out of the collector's walks.
        tune_gc(settings.gc_threshold0, settings.gc_freeze_after_startup)
        try:
            yield
        finally:
            try:
                if grpc_api is not None:
                    await grpc_api.stop(settings.resilience.drain_timeout_s)
                if worker is not None:
                    await worker.close()
                await app.state.responses.close()
                await app.state.services.resilience.drain()
                await app.state.services.resilience.close()
                await backend.close()
                await app.state.services.embeddings.close()
                if app.state.services.content_filter is not None:
                    await app.state.services.content_filter.close()
            finally:
                # Last: requests that drained above still write their usage records.
                await app.state.gateway.close()

    return Starlette(
        routes=build_routes(),
        middleware=build_middleware(settings),
        exception_handlers={
            APIError: _render_api_error,
            HTTPException: _render_http_exception,
            Exception: _render_unexpected,
        },
        lifespan=lifespan,
    )


def _triton_backend(settings: Settings) -> InferenceBackend:
    """Every served model's Triton endpoint: one server at ``triton.url`` by default, or
    named endpoints of balanced replicas (api/backend/routing.py)."""
    return build_routing_backend(settings)


def guarded_backend(
    settings: Settings, backend: InferenceBackend
) -> tuple[InferenceBackend, Resilience]:
    """The backend behind its guards, and the handle that health, metrics and shutdown use.

    Outermost first: breaker (fail fast while a model is broken) -> deadline (covers queueing
    and retries, and bounds each wait for a response) -> admission (bounded in-flight and
    queue) -> retry (only before the first chunk) -> the backend itself. The prober asks the
    backend itself and drives the breakers.
    """
    options = settings.resilience
    breakers = BreakerBoard(BreakerPolicy.from_settings(options))
    resilience = Resilience(
        settings=options,
        breakers=breakers,
        admission=Admission(options, model_capacities(settings), serving_replicas(backend)),
        prober=ModelProber(backend, breakers, ProbeTarget.of(settings.models), options),
        replica_sets=tuple(replica_sets(backend)),
    )
    guarded: InferenceBackend = RetryBackend(
        backend, options.retry_attempts, options.retry_backoff_s
    )
    guarded = AdmissionBackend(guarded, resilience.admission)
    guarded = DeadlineBackend(
        guarded,
        model_timeouts(settings),
        settings.request_timeout_s,
        drain_deadline=resilience.admission.drain_deadline,
        idle=IdleBounds.from_settings(options),
    )
    return BreakerBackend(guarded, resilience.breakers), resilience


def begin_drain(app: Starlette) -> None:
    """Shutdown has begun: admit nothing new, end running requests before the drain timeout."""
    services: Services | None = getattr(app.state, "services", None)
    if services is not None:
        services.resilience.begin_drain()


def build_services(settings: Settings, backend: InferenceBackend) -> Services:
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    cache = build_embedding_cache(redis_url)
    backend, resilience = guarded_backend(settings, backend)
    return Services(
        settings=settings,
        backend=backend,
        registry=ModelRegistry(settings.models),
        embeddings=EmbeddingService(
            backend, cache, settings.embedding_batch_size, settings.embedding_cache_ttl_s
        ),
        started_at=int(time.time()),
        resilience=resilience,
        content_filter=build_content_filter(settings),
    )


def build_routes() -> list[BaseRoute]:
    return [
        Route("/v1/chat/completions", chat.create_chat_completion, methods=["POST"]),
        Route("/v1/completions", completions.create_completion, methods=["POST"]),
        WebSocketRoute("/v1/chat/completions/ws", websocket.chat_completions_ws),
        Route("/v1/embeddings", embeddings.create_embeddings, methods=["POST"]),
        Route("/v1/moderations", moderations.create_moderation, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", models.retrieve_model, methods=["GET"]),
        Route("/openapi.json", docs.openapi_json, methods=["GET"]),
        Route("/docs", docs.docs_page, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
        *gateway_routes(),
        *batch_routes(),
        *response_routes(),
    ]


def response_routes() -> list[BaseRoute]:
    r = responses
    return [
        Route("/v1/responses", r.create_response, methods=["POST"]),
        Route("/v1/responses/input_tokens", r.count_tokens, methods=["POST"]),
        Route(
            "/v1/responses/{response_id}",
            by_method(GET=r.retrieve_response, HEAD=r.retrieve_response, DELETE=r.delete_response),
            methods=["GET", "DELETE"],
        ),
        Route("/v1/responses/{response_id}/cancel", r.cancel_response, methods=["POST"]),
        Route("/v1/responses/{response_id}/input_items", r.list_input_items, methods=["GET"]),
    ]


def batch_routes() -> list[BaseRoute]:
    """Files and batches (the batch worker runs them; see api/batches)."""
    return [
        Route(
            "/v1/files",
            by_method(GET=files.list_files, HEAD=files.list_files, POST=files.upload_file),
            methods=["GET", "POST"],
        ),
        Route(
            "/v1/files/{file_id}",
            by_method(GET=files.retrieve_file, HEAD=files.retrieve_file, DELETE=files.delete_file),
            methods=["GET", "DELETE"],
        ),
        Route("/v1/files/{file_id}/content", files.file_content, methods=["GET"]),
        Route(
            "/v1/batches",
            by_method(
                GET=batches.list_batches, HEAD=batches.list_batches, POST=batches.create_batch
            ),
            methods=["GET", "POST"],
        ),
        Route("/v1/batches/{batch_id}", batches.retrieve_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", batches.cancel_batch, methods=["POST"]),
        *conversation_routes(),
    ]


def conversation_routes() -> list[BaseRoute]:
    c, m = conversations, conversation_messages
    return [
        Route(
            "/v1/conversations",
            by_method(
                GET=c.list_conversations, HEAD=c.list_conversations, POST=c.create_conversation
            ),
            methods=["GET", "POST"],
        ),
        Route(
            "/v1/conversations/{conversation_id}",
            by_method(
                GET=c.retrieve_conversation,
                HEAD=c.retrieve_conversation,
                POST=c.update_conversation,
                DELETE=c.delete_conversation,
            ),
            methods=["GET", "POST", "DELETE"],
        ),
        Route(
            "/v1/conversations/{conversation_id}/items",
            by_method(GET=c.list_items, HEAD=c.list_items, POST=c.create_items),
            methods=["GET", "POST"],
        ),
        Route(
            "/v1/conversations/{conversation_id}/items/{item_id}",
            by_method(GET=c.retrieve_item, HEAD=c.retrieve_item, DELETE=c.delete_item),
            methods=["GET", "DELETE"],
        ),
        # Deprecated (api.deprecation.BUILT_IN): the items above replace it.
        Route(
            "/v1/conversations/{conversation_id}/messages",
            by_method(GET=m.list_messages, HEAD=m.list_messages, POST=m.append_message),
            methods=["GET", "POST"],
        ),
    ]


def gateway_routes() -> list[BaseRoute]:
    """Usage, metrics and the admin API (``/v1/admin``: admin scope only)."""
    return [
        Route("/v1/usage", usage.own_usage, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # One route per path, so a 405 lists every method the path supports (RFC 9110).
        Route(
            "/v1/admin/organizations",
            by_method(GET=admin.list_organizations, POST=admin.create_organization),
            methods=["GET", "POST"],
        ),
        Route(
            "/v1/admin/keys",
            by_method(GET=admin.list_keys, POST=admin.create_key),
            methods=["GET", "POST"],
        ),
        Route("/v1/admin/keys/{key_id}", admin.revoke_key, methods=["DELETE"]),
        Route("/v1/admin/tiers/{name}", admin.set_tier, methods=["PUT"]),
        Route("/v1/admin/usage", admin.usage, methods=["GET"]),
    ]


def build_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the request id must exist before anything can fail."""
    return [
        Middleware(RequestIdMiddleware),
        # Right inside it: an unexpected error is answered with the id, the connection kept.
        Middleware(UnhandledErrorMiddleware),
        Middleware(AccessLogMiddleware),
        Middleware(MetricsMiddleware),
        # The gateway: flood guard by address, identity, usage records, then key limits.
        Middleware(IpLimitMiddleware),
        Middleware(AuthMiddleware),
        Middleware(UsageMiddleware),
        Middleware(AdmissionMiddleware),
        Middleware(DeprecatedRoutesMiddleware, routes=settings.deprecated_routes),
        # Innermost: closest to the work it cancels when the client leaves.
        Middleware(CancelOnDisconnectMiddleware),
    ]


async def _render_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return json_response(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)


async def _render_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # RFC 9110: a 405 lists the allowed methods; Starlette puts them on the exception.
        error: APIError = MethodNotAllowedError(
            f"Method {request.method} is not allowed here.", headers=dict(exc.headers or {})
        )
    elif exc.status_code == 404:
        error = NotFoundError(f"Unknown route: {request.method} {request.url.path}")
    else:
        error = APIError(exc.detail)
        error.status_code = exc.status_code
    return await _render_api_error(request, error)


async def _render_unexpected(request: Request, exc: Exception) -> Response:
    # The last resort, outside every middleware: UnhandledErrorMiddleware answers first.
    logger.exception("unhandled error", exc_info=exc)
    error = BackendError(
        "The server had an error while processing your request.", code="internal_error"
    )
    return await _render_api_error(request, error)
