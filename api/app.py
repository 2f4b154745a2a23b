"""Application factory: routes, middleware (as data), error rendering and lifetime."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiocache import SimpleMemoryCache
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.backend.protocol import InferenceBackend
from api.backend.triton_grpc import TritonGrpcBackend
from api.deprecation import DeprecatedRoutesMiddleware
from api.embedding_service import EmbeddingService
from api.errors import APIError, BackendError, MethodNotAllowedError, NotFoundError
from api.middleware import RequestIdMiddleware
from api.registry import ModelRegistry
from api.responses import json_response
from api.routes import chat, completions, docs, embeddings, health, models
from api.services import Services
from api.settings import Settings

logger = logging.getLogger(__name__)

BackendFactory = Callable[[Settings], InferenceBackend]


def create_app(settings: Settings, backend_factory: BackendFactory | None = None) -> Starlette:
    """Build the app; the backend is created on start-up and closed on shutdown."""
    factory = backend_factory or _triton_backend

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backend = factory(settings)
        app.state.services = build_services(settings, backend)
        try:
            yield
        finally:
            await backend.close()

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
    return TritonGrpcBackend(settings.triton, request_timeout_s=settings.request_timeout_s)


def build_services(settings: Settings, backend: InferenceBackend) -> Services:
    cache = SimpleMemoryCache()
    return Services(
        settings=settings,
        backend=backend,
        registry=ModelRegistry(settings.models),
        embeddings=EmbeddingService(
            backend, cache, settings.embedding_batch_size, settings.embedding_cache_ttl_s
        ),
        started_at=int(time.time()),
    )


def build_routes() -> list[Route]:
    return [
        Route("/v1/chat/completions", chat.create_chat_completion, methods=["POST"]),
        Route("/v1/completions", completions.create_completion, methods=["POST"]),
        Route("/v1/embeddings", embeddings.create_embeddings, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", models.retrieve_model, methods=["GET"]),
        Route("/openapi.json", docs.openapi_json, methods=["GET"]),
        Route("/docs", docs.docs_page, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
    ]


def build_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the request id must exist before anything can fail."""
    return [
        Middleware(RequestIdMiddleware),
        Middleware(DeprecatedRoutesMiddleware, routes=settings.deprecated_routes),
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
    logger.exception("unhandled error", exc_info=exc)
    error = BackendError(
        "The server had an error while processing your request.", code="internal_error"
    )
    return await _render_api_error(request, error)
