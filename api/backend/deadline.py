"""Deadlines: every backend call ends by its model's timeout, or when shutdown says so.

This is the one place a request's time limit is enforced (queue wait, retries and the Triton
call included). Running out cancels the inner call, which cancels the gRPC stream and so the
request inside Triton, and raises ``BackendTimeoutError`` (504; an SSE error event once the
stream has started). While the server drains, calls end at the drain deadline with 503.

A model that stops answering is caught sooner than its timeout: each wait for the next
response is bounded too (``first_response_s`` for the first, ``idle_s`` for the others), so a
stream whose engine died ends with an error event within that bound instead of hanging.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
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
from api.settings import ResilienceSettings, Settings

T = TypeVar("T")

DrainDeadline = Callable[[], float | None]


@dataclass(frozen=True, slots=True)
class IdleBounds:
    """How long one call may wait for a response: the first, and each one after it."""

    first_response_s: float = math.inf
    idle_s: float = math.inf

    @classmethod
    def from_settings(cls, settings: ResilienceSettings) -> IdleBounds:
        return cls(settings.first_response_timeout_s, settings.stream_idle_timeout_s)


def model_timeouts(settings: Settings) -> dict[str, float]:
    """Each Triton model's timeout: its served model's override, else the global one.

    Two public models on one Triton model share the longer of their timeouts.
    """
    timeouts: dict[str, float] = {}
    for model in settings.models:
        timeout = model.request_timeout_s or settings.request_timeout_s
        timeouts[model.route] = max(timeout, timeouts.get(model.route, 0.0))
    return timeouts


class DeadlineBackend:
    """``InferenceBackend`` that bounds every call by a per-model timeout."""

    def __init__(
        self,
        inner: InferenceBackend,
        timeouts: Mapping[str, float],
        default_timeout_s: float,
        drain_deadline: DrainDeadline = lambda: None,
        idle: IdleBounds | None = None,
    ) -> None:
        self._inner = inner
        self._timeouts = dict(timeouts)
        self._default_timeout_s = default_timeout_s
        self._drain_deadline = drain_deadline
        self._idle = idle or IdleBounds()

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
        return _Deadline(loop, loop.time() + timeout, timeout, self._drain_deadline, self._idle)

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return await self._inner.readiness(models)

    async def close(self) -> None:
        await self._inner.close()


class _Deadline:
    """One call's deadline: the steps of a stream are awaited under it, one at a time.

    Each wait ends at the soonest of the call's deadline, the drain deadline and the wait's
    own bound (first response, or idle). One timer serves the whole call: it is moved only
    when a wait must end sooner than it is set for; when it goes off before the current
    wait's end (the bound moved on with the stream) it sets itself again for that end. So a
    streamed chunk costs a clock read, not a timer set and cancel. When it fires for real it
    cancels the task waiting on a step; between steps it does nothing, and the next step
    checks the deadlines itself. It does by hand what ``asyncio.timeout_at`` does, with the
    loop passed in: on Python 3.11 each ``get_running_loop`` (three per timeout scope) is a
    ``getpid`` system call.
    """

    __slots__ = (
        "_answered",
        "_deadline",
        "_drain_deadline",
        "_expired",
        "_idle",
        "_loop",
        "_timeout",
        "_timer",
        "_wait_end",
        "_waiting",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        timeout: float,
        drain_deadline: DrainDeadline,
        idle: IdleBounds,
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._timeout = timeout
        self._drain_deadline = drain_deadline
        self._idle = idle
        self._answered = False  # a step has completed: later waits are bounded by idle_s
        self._wait_end = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[object] | None = None
        # Why the timer ended the call. A step starts only while this is None, so set during
        # a step it means the step's task was cancelled by us.
        self._expired: Exception | None = None

    async def before(self, step: Awaitable[T]) -> T:
        """Await ``step`` until its bound, the call's deadline or the drain deadline."""
        now = self._loop.time()
        drain = self._drain_deadline()
        hard = self._deadline if drain is None else min(self._deadline, drain)
        if self._expired is not None or now >= hard:
            # Passed while the consumer was busy: a chunk that is ready at once is refused too.
            if inspect.iscoroutine(step):
                step.close()
            raise self._expired or self._error(now, drain)
        bound = self._idle.idle_s if self._answered else self._idle.first_response_s
        self._wait_end = min(hard, now + bound)
        if self._timer is None or self._timer.when() > self._wait_end:
            self.close()
            self._timer = self._loop.call_at(self._wait_end, self._fire)
        task = asyncio.current_task(self._loop)
        assert task is not None
        cancelling = task.cancelling()
        self._waiting = task
        try:
            result = await step
        except asyncio.CancelledError:
            # Ours only if the timer fired and nobody else cancelled the task as well.
            if self._expired is not None and task.uncancel() <= cancelling:
                raise self._expired from None
            raise
        finally:
            self._waiting = None
        if self._expired is not None:
            task.uncancel()  # the step swallowed our cancellation; take it back
        self._answered = True
        return result

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self._waiting is None:
            return  # between steps: the next step checks the deadlines and sets the timer
        now = self._loop.time()
        if now + _EARLY_S < self._wait_end:  # the stream moved on: this wait ends later
            self._timer = self._loop.call_at(self._wait_end, self._fire)
            return
        self._expired = self._error(now, self._drain_deadline())
        self._waiting.cancel()

    def _error(self, now: float, drain: float | None) -> Exception:
        if drain is not None and drain <= self._deadline and drain <= now + _EARLY_S:
            return ShuttingDownError(
                "The server is shutting down; the reply is incomplete.",
                headers={"Retry-After": "1"},
            )
        if self._deadline <= now + _EARLY_S:
            return BackendTimeoutError(
                f"The model did not finish within the {self._timeout:g} s request timeout."
            )
        if self._answered:
            return BackendTimeoutError(
                f"The model sent nothing for {self._idle.idle_s:g} s (the stream idle "
                "timeout); the reply is incomplete."
            )
        return BackendTimeoutError(
            f"The model did not start answering within {self._idle.first_response_s:g} s."
        )


# Timers may fire this much before their time (uvloop rounds to milliseconds).
_EARLY_S = 0.002
