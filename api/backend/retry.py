"""Retries with back-off, only where they cannot duplicate output.

A generation is retried only if it failed before its first chunk reached the caller: nothing
has been shown, so a second attempt cannot repeat text. Once a chunk has gone out, a failure
propagates (the SSE layer ends the stream with an error event). Embeddings have no partial
output and are retried the same way. Only "backend unavailable" is retried: a bad request or a
timeout would fail again, and the API's own refusals are final.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TypeVar

from api.backend.protocol import InferenceBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Only a plain "backend unavailable" (connection refused, reset, Triton restarting)."""
    return type(exc) is BackendUnavailableError


class RetryBackend:
    """``InferenceBackend`` that retries calls that failed before producing anything."""

    def __init__(
        self,
        inner: InferenceBackend,
        attempts: int,
        backoff_s: float,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._jitter = jitter

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        stream, first = await self._with_retries(lambda: _start(self._inner.generate(request)))
        try:
            if first is None:
                return
            yield first
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        return await self._with_retries(
            lambda: self._inner.embed(triton_model, texts, request_id, truncate=truncate)
        )

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for number in range(self._attempts + 1):
            try:
                return await attempt()
            except Exception as exc:
                if number == self._attempts or not is_retryable(exc):
                    raise
                delay = self._backoff_s * 2**number * self._jitter()
                logger.info("retrying after %s (attempt %d, %.3f s)", exc, number + 2, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return await self._inner.readiness(models)

    async def close(self) -> None:
        await self._inner.close()


async def _start(
    stream: AsyncGenerator[GenerationChunk, None],
) -> tuple[AsyncGenerator[GenerationChunk, None], GenerationChunk | None]:
    """The stream and its first chunk (None if it ended at once); closed if that failed."""
    try:
        return stream, await anext(stream)
    except StopAsyncIteration:
        return stream, None
    except BaseException:
        await stream.aclose()
        raise
