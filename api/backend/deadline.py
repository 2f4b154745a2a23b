"""Deadlines: every backend call ends by its model's timeout, or when shutdown says so.

This is the one place a request's time limit is enforced (queue wait, retries and the Triton
call included). Running out cancels the inner call, which cancels the gRPC stream and so the
request inside Triton, and raises ``BackendTimeoutError`` (504; an SSE error event once the
stream has started). While the server drains, calls end at the drain deadline with 503.
"""

from __future__ import annotations

import asyncio
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
        # One timer per stream, not an asyncio.timeout per chunk: that cost more than the
        # rest of a chunk's way through the guards (see benchmarks/README.md).
        watchdog = _Watchdog(timeout, self._drain_deadline)
        stream = self._inner.generate(request)
        try:
            while True:
                watchdog.arm()
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    watchdog.raise_if_expired()
                    raise
                finally:
                    watchdog.disarm()
                yield chunk
        finally:
            watchdog.close()
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


class _Watchdog:
    """A stream's deadline as one timer, which interrupts only an ``await`` on the stream.

    ``arm`` before awaiting the next chunk (it fails at once if the deadline has passed),
    ``disarm`` after. The timer cancels the awaiting task only while armed; a cancellation it
    caused becomes the timeout error in ``raise_if_expired``, exactly as ``asyncio.timeout``
    tells its own cancellations from others'. The drain deadline is read at every ``arm``, so
    a shutdown that begins mid-stream moves the timer forward.
    """

    def __init__(self, timeout: float, drain_deadline: DrainDeadline) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._deadline = self._loop.time() + timeout
        self._drain_deadline = drain_deadline
        self._drain: float | None = None
        self._limit = self._deadline
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._fired = False

    def arm(self) -> None:
        drain = self._drain_deadline()
        if drain != self._drain:
            self._drain = drain
            self._limit = self._deadline if drain is None else min(self._deadline, drain)
            self.close()
        if self._loop.time() >= self._limit:
            raise _expired_error(self._timeout, self._deadline, self._drain)
        if self._timer is None:
            self._timer = self._loop.call_at(self._limit, self._expire)
        self._task = asyncio.current_task()
        self._cancelling = self._task.cancelling() if self._task is not None else 0

    def disarm(self) -> None:
        self._task = None

    def _expire(self) -> None:
        self._timer = None
        if self._task is not None:
            self._fired = True
            self._task.cancel()

    def raise_if_expired(self) -> None:
        """Called with a CancelledError in flight: turn ours into the timeout error."""
        if self._fired and self._task is not None and self._task.uncancel() <= self._cancelling:
            self._fired = False
            raise _expired_error(self._timeout, self._deadline, self._drain) from None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
