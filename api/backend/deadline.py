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
        loop = asyncio.get_running_loop()
        timeout = self.timeout_for(request.triton_model)
        deadline = loop.time() + timeout
        stream = self._inner.generate(request)
        try:
            while True:
                try:
                    chunk = await self._before(loop, deadline, timeout, anext(stream))
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str
    ) -> EmbeddingResult:
        loop = asyncio.get_running_loop()
        timeout = self.timeout_for(triton_model)
        deadline = loop.time() + timeout
        step = self._inner.embed(triton_model, texts, request_id)
        return await self._before(loop, deadline, timeout, step)

    async def _before(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        timeout: float,
        step: Awaitable[T],
    ) -> T:
        """Await ``step`` until the request's deadline or the drain deadline, if sooner.

        Runs once per streamed chunk, so it does by hand what ``asyncio.timeout_at`` does,
        with the loop passed in: on Python 3.11 each ``get_running_loop`` (three per timeout
        scope) is a ``getpid`` system call.
        """
        drain = self._drain_deadline()
        limit = deadline if drain is None else min(deadline, drain)
        if loop.time() >= limit:
            # Passed while the consumer was busy: a chunk that is ready at once is refused too.
            if inspect.iscoroutine(step):
                step.close()
            raise _expired_error(timeout, deadline, drain)
        task = asyncio.current_task(loop)
        assert task is not None
        cancelling, expiry = task.cancelling(), _Expiry(task)
        timer = loop.call_at(limit, expiry.fire)
        try:
            result = await step
        except asyncio.CancelledError:
            # Ours only if this scope fired and nobody else cancelled the task as well.
            if expiry.fired and task.uncancel() <= cancelling:
                raise _expired_error(timeout, deadline, drain) from None
            raise
        finally:
            timer.cancel()
        if expiry.fired:
            task.uncancel()  # the step swallowed our cancellation; take it back
        return result

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return await self._inner.readiness(models)

    async def close(self) -> None:
        await self._inner.close()


class _Expiry:
    """Cancels the task waiting on a step when its deadline passes."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


def _expired_error(timeout: float, deadline: float, drain: float | None) -> Exception:
    if drain is not None and drain <= deadline:
        return ShuttingDownError(
            "The server is shutting down; the reply is incomplete.",
            headers={"Retry-After": "1"},
        )
    return BackendTimeoutError(
        f"The model did not finish within the {timeout:g} s request timeout."
    )
