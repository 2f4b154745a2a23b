"""Deadlines: every backend call ends by its model's timeout, or when shutdown says so.

This is the one place a request's time limit is enforced (queue wait, retries and the Triton
call included). Running out cancels the inner call, which cancels the gRPC stream and so the
request inside Triton, and raises ``BackendTimeoutError`` (504; an SSE error event once the
stream has started). While the server drains, calls end at the drain deadline with 503.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from api.backend.protocol import InferenceBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendTimeoutError, ShuttingDownError
from api.settings import Settings

T = TypeVar("T")

DrainDeadline = Callable[[], float | None]


def model_timeouts(settings: Settings) -> dict[str, float]:
    """Each Triton model's timeout: its served model's override, else the global one.

    Two public models on one Triton model share the longer of their timeouts.
    """
    timeouts: dict[str, float] = {}
    for model in settings.models:
        timeout = model.request_timeout_s or settings.request_timeout_s
        timeouts[model.triton_model] = max(timeout, timeouts.get(model.triton_model, 0.0))
    return timeouts


class DeadlineBackend:
    """``InferenceBackend`` that bounds every call by a per-model timeout."""

    def __init__(
        self,
        inner: InferenceBackend,
        timeouts: Mapping[str, float],
        default_timeout_s: float,
        drain_deadline: DrainDeadline = lambda: None,
    ) -> None:
        self._inner = inner
        self._timeouts = dict(timeouts)
        self._default_timeout_s = default_timeout_s
        self._drain_deadline = drain_deadline

    def timeout_for(self, triton_model: str) -> float:
        return self._timeouts.get(triton_model, self._default_timeout_s)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        timeout = self.timeout_for(request.triton_model)
        deadline = asyncio.get_running_loop().time() + timeout
        stream = self._inner.generate(request)
        try:
            while True:
                try:
                    chunk = await self._before(deadline, timeout, anext(stream))
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str
    ) -> EmbeddingResult:
        timeout = self.timeout_for(triton_model)
        deadline = asyncio.get_running_loop().time() + timeout
        return await self._before(
            deadline, timeout, self._inner.embed(triton_model, texts, request_id)
        )

    async def _before(self, deadline: float, timeout: float, step: Awaitable[T]) -> T:
        """Await ``step`` until the request's deadline or the drain deadline, if sooner."""
        drain = self._drain_deadline()
        limit = deadline if drain is None else min(deadline, drain)
        if asyncio.get_running_loop().time() >= limit:
            # Passed while the consumer was busy: a chunk that is ready at once is refused too.
            if inspect.iscoroutine(step):
                step.close()
            raise _expired_error(timeout, deadline, drain)
        scope = asyncio.timeout_at(limit)
        try:
            async with scope:
                return await step
        except TimeoutError:
            if not scope.expired():
                raise  # not ours: a timeout from further in
            raise _expired_error(timeout, deadline, drain) from None

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return await self._inner.readiness(models)

    async def close(self) -> None:
        await self._inner.close()


def _expired_error(timeout: float, deadline: float, drain: float | None) -> Exception:
    if drain is not None and drain <= deadline:
        return ShuttingDownError(
            "The server is shutting down; the reply is incomplete.",
            headers={"Retry-After": "1"},
        )
    return BackendTimeoutError(
        f"The model did not finish within the {timeout:g} s request timeout."
    )
