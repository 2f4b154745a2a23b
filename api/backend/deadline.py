"""Deadlines: every backend call ends by its model's timeout, or when shutdown says so.

This is the one place a request's time limit is enforced (queue wait, retries and the Triton
call included). Running out cancels the inner call, which cancels the gRPC stream and so the
request inside Triton, and raises ``BackendTimeoutError`` (504; an SSE error event once the
stream has started). While the server drains, calls end at the drain deadline with 503.
"""

from __future__ import annotations

import asyncio
import inspect
import math
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
        deadline = self._deadline(request.triton_model)
        stream = self._inner.generate(request)
        try:
            while True:
                try:
                    chunk = await deadline.before(anext(stream))
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            deadline.close()
            await stream.aclose()

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        deadline = self._deadline(triton_model)
        try:
            return await deadline.before(
                self._inner.embed(triton_model, texts, request_id, truncate=truncate)
            )
        finally:
            deadline.close()

    def _deadline(self, triton_model: str) -> _Deadline:
        loop = asyncio.get_running_loop()
        timeout = self.timeout_for(triton_model)
        return _Deadline(loop, loop.time() + timeout, timeout, self._drain_deadline)

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return await self._inner.readiness(models)

    async def close(self) -> None:
        await self._inner.close()


class _Deadline:
    """One call's deadline: the steps of a stream are awaited under it, one at a time.

    One timer serves the whole call and is moved only when the drain deadline comes sooner; a
    timer per streamed chunk cost a timer set and cancel per token. When it fires it cancels
    the task waiting on a step; between steps it does nothing, and the next step is refused.
    It does by hand what ``asyncio.timeout_at`` does, with the loop passed in: on Python 3.11
    each ``get_running_loop`` (three per timeout scope) is a ``getpid`` system call.
    """

    __slots__ = (
        "_deadline",
        "_drain_deadline",
        "_expired",
        "_limit",
        "_loop",
        "_timeout",
        "_timer",
        "_waiting",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        timeout: float,
        drain_deadline: DrainDeadline,
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._timeout = timeout
        self._drain_deadline = drain_deadline
        self._limit = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[object] | None = None
        # The timer went off (uvloop's may fire a little early). A step starts only while this
        # is False, so set during a step it means the step's task was cancelled by us.
        self._expired = False

    async def before(self, step: Awaitable[T]) -> T:
        """Await ``step`` until the call's deadline or the drain deadline, if sooner."""
        drain = self._drain_deadline()
        limit = self._deadline if drain is None else min(self._deadline, drain)
        if self._expired or self._loop.time() >= limit:
            # Passed while the consumer was busy: a chunk that is ready at once is refused too.
            if inspect.iscoroutine(step):
                step.close()
            raise _expired_error(self._timeout, self._deadline, drain)
        if limit != self._limit:  # the first step, or the drain began
            self.close()
            self._timer, self._limit = self._loop.call_at(limit, self._fire), limit
        task = asyncio.current_task(self._loop)
        assert task is not None
        cancelling = task.cancelling()
        self._waiting = task
        try:
            result = await step
        except asyncio.CancelledError:
            # Ours only if the deadline fired and nobody else cancelled the task as well.
            if self._expired and task.uncancel() <= cancelling:
                raise _expired_error(self._timeout, self._deadline, drain) from None
            raise
        finally:
            self._waiting = None
        if self._expired:
            task.uncancel()  # the step swallowed our cancellation; take it back
        return result

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer, self._expired = None, True
        if self._waiting is not None:
            self._waiting.cancel()


def _expired_error(timeout: float, deadline: float, drain: float | None) -> Exception:
    if drain is not None and drain <= deadline:
        return ShuttingDownError(
            "The server is shutting down; the reply is incomplete.",
            headers={"Retry-After": "1"},
        )
    return BackendTimeoutError(
        f"The model did not finish within the {timeout:g} s request timeout."
    )
