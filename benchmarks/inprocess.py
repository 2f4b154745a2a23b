"""The API with the Triton hop replaced by a zero-cost backend, for uvicorn's workers.

``uvicorn benchmarks.inprocess:build_app --factory --workers N`` serves the real app (routes,
middleware, auth, limits, usage records, logging) over a backend that answers at once, so what
is measured is the API's own cost. Settings come from the environment like ``python -m api``;
``BENCH_GATEWAY=false`` takes auth, limits and usage records out of the middleware stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence, Set

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.middleware import Middleware

from api.app import create_app
from api.auth.middleware import AuthMiddleware
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.limits.middleware import AdmissionMiddleware, IpLimitMiddleware
from api.logs import configure_logging
from api.settings import Settings
from api.usage.middleware import UsageMiddleware

FILLER = (" the", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog.")
GATEWAY_MIDDLEWARE = (IpLimitMiddleware, AuthMiddleware, UsageMiddleware, AdmissionMiddleware)


class ZeroCostBackend:
    """``InferenceBackend`` that costs nothing: ``max_tokens`` filler chunks, unit vectors.

    One chunk per token, streamed or not (the API always streams from Triton); with
    ``yield_per_chunk`` every chunk passes through the event loop once, as a chunk read from a
    gRPC stream would.
    """

    def __init__(self, dimensions: int = 384, yield_per_chunk: bool = True) -> None:
        self._vector = np.full(dimensions, 1 / np.sqrt(dimensions), dtype=np.float32)
        self._yield = yield_per_chunk

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        count = max(request.params.max_tokens, 1)
        prompt = len(request.messages_json or request.prompt or "") // 4 + 1
        for index in range(count):
            if self._yield:
                await asyncio.sleep(0)
            yield GenerationChunk(
                text=FILLER[index % len(FILLER)],
                prompt_tokens=prompt if index == 0 else None,
                completion_tokens=1,
                final=index == count - 1,
            )

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        vectors = np.tile(self._vector, (len(texts), 1))
        return EmbeddingResult(vectors=vectors, token_counts=[len(t) // 4 + 1 for t in texts])

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return Readiness(server_ready=True, models=dict.fromkeys(models, True))

    async def close(self) -> None:
        return None


class BenchAppSettings(BaseSettings):
    """What the benchmark varies beyond the API's own settings (``BENCH_*``)."""

    model_config = SettingsConfigDict(env_prefix="BENCH_", extra="ignore")

    gateway: bool = True
    yield_per_chunk: bool = True
    # Middleware classes to leave out (comma-separated names): what each one costs.
    drop: str = ""


def without_gateway(middleware: Sequence[Middleware]) -> list[Middleware]:
    """The middleware stack minus auth, limits and usage records."""
    gateway: set[object] = set(GATEWAY_MIDDLEWARE)
    return [entry for entry in middleware if entry.cls not in gateway]


def without_named(middleware: Sequence[Middleware], names: Set[str]) -> list[Middleware]:
    """The middleware stack minus the classes named in ``names``."""
    return [entry for entry in middleware if getattr(entry.cls, "__name__", "") not in names]


def build_app() -> Starlette:
    """uvicorn factory (``--factory``): called once in every worker process."""
    settings = Settings()
    bench = BenchAppSettings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(
        settings, backend_factory=lambda _: ZeroCostBackend(yield_per_chunk=bench.yield_per_chunk)
    )
    if not bench.gateway:
        app.user_middleware = without_gateway(app.user_middleware)
    dropped = {name.strip() for name in bench.drop.split(",") if name.strip()}
    app.user_middleware = without_named(app.user_middleware, dropped)
    return app
