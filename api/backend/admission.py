"""Admission control: a bounded number of requests per Triton model, a bounded queue behind it.

Beyond ``max_in_flight`` running and ``max_queue`` waiting, a request is refused at once with
503 ``model_overloaded`` (and ``Retry-After``). A model's ``max_in_flight`` follows what its
engine runs at once (``model_capacities``), and ``queue_timeout_s`` bounds the whole wait for
a generation's first token, in the API's queue and then inside Triton: a request that has
not started by then is refused too, so under overload latency stays bounded instead of
growing with the backlog. ``Admission`` also owns draining: once shutdown begins it admits
nothing new and tells the deadline layer when running requests must end.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import NoReturn

from api.backend.protocol import InferenceBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import ModelOverloadedError, ShuttingDownError
from api.settings import ResilienceSettings, ServedModel, Settings

logger = logging.getLogger(__name__)

_RETRY_AFTER = {"Retry-After": "1"}


class ModelGate:
    """Slots for one Triton model: FIFO waiting, refused when the queue is full.

    The number of slots is read on every decision (``limit``): a model served by several
    replicas admits one engine's worth per replica in rotation, so the limit follows the
    replicas that DNS adds or a failure takes out. A larger limit hands its slots to the
    waiting requests at the next arrival or release.
    """

    def __init__(
        self,
        name: str,
        max_in_flight: int | Callable[[], int],
        max_queue: int,
        queue_timeout_s: float,
    ):
        self.name = name
        limit = max_in_flight
        self._limit = limit if callable(limit) else (lambda: limit)
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.in_flight = 0
        self.waiting = 0
        self.rejected_total = 0

    @property
    def max_in_flight(self) -> int:
        """The slots this model has now."""
        return max(self._limit(), 1)

    def deadline(self) -> float:
        """Event-loop time by which a generation entering now must have its first token."""
        return asyncio.get_running_loop().time() + self.queue_timeout_s

    @contextlib.asynccontextmanager
    async def slot(self, deadline: float | None = None) -> AsyncIterator[None]:
        """Hold one of the model's slots for the duration of the block; waiting for it ends
        at ``deadline`` (event-loop time; default: ``queue_timeout_s`` from now)."""
        self._hand_over()
        if not self._waiters and self.in_flight < self.max_in_flight:
            # A free slot is taken without waiting: no queue-timeout timer to arm and cancel.
            self.in_flight += 1
        else:
            await self._wait_for_slot(self.deadline() if deadline is None else deadline)
        try:
            yield
        finally:
            self._release()

    async def _wait_for_slot(self, deadline: float) -> None:
        """Queue for a slot; ``_hand_over`` counts it as taken before waking this waiter."""
        if self.waiting >= self.max_queue:
            self._refuse("its queue is full")
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(handed)
        self.waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                await handed
        except BaseException as exc:
            if handed.done() and not handed.cancelled():
                self._release()  # handed a slot just as the wait ended: give it back
            if isinstance(exc, TimeoutError):
                self._refuse(f"no slot freed within {self.queue_timeout_s:g} s")
            raise
        finally:
            self.waiting -= 1
            with contextlib.suppress(ValueError):
                self._waiters.remove(handed)

    def _release(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free slots to the longest-waiting requests, in order."""
        while self._waiters and self.in_flight < self.max_in_flight:
            handed = self._waiters.popleft()
            if not handed.done():
                self.in_flight += 1
                handed.set_result(None)

    async def first_chunk(
        self, stream: AsyncGenerator[GenerationChunk, None], deadline: float
    ) -> GenerationChunk | None:
        """The stream's first chunk (None if it ends without one), or a refusal at
        ``deadline``: a generation the engine cannot start in time gives its slot back."""
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                return await anext(stream)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if not timeout.expired():
                raise  # the backend's own timeout, not this wait's
            self._refuse(f"no first token within {self.queue_timeout_s:g} s")

    def _refuse(self, reason: str) -> NoReturn:
        self.rejected_total += 1
        logger.info("refusing a request for %s: %s", self.name, reason)
        raise ModelOverloadedError(
            "The model is overloaded; retry shortly.", headers=dict(_RETRY_AFTER)
        )


def model_capacity(model: ServedModel, settings: ResilienceSettings) -> int:
    """Generations admitted at once for ``model``: its own ``max_in_flight``, else what its
    engine runs at once plus the headroom (within the global cap), else the global cap."""
    if model.max_in_flight is not None:
        return model.max_in_flight
    if model.engine_slots is not None:
        return min(model.engine_slots + settings.admission_headroom, settings.max_in_flight)
    return settings.max_in_flight


def model_capacities(settings: Settings) -> dict[str, int]:
    """``model_capacity`` per Triton model (the smallest where served models share one)."""
    capacities: dict[str, int] = {}
    for model in settings.models:
        capacity = model_capacity(model, settings.resilience)
        capacities[model.route] = min(capacity, capacities.get(model.route, capacity))
    return capacities


class Admission:
    """The gates of all Triton models and the drain state of the whole API."""

    def __init__(
        self,
        settings: ResilienceSettings,
        capacities: Mapping[str, int] | None = None,
        replicas: Callable[[str], int] | None = None,
    ) -> None:
        self._settings = settings
        # Slots per Triton model and replica (model_capacities); others get
        # settings.max_in_flight. ``replicas`` counts a model's replicas in rotation.
        self._capacities = dict(capacities or {})
        self._replicas = replicas
        self._gates: dict[str, ModelGate] = {}
        self._drain_deadline: float | None = None

    def capacity(self, triton_model: str) -> int:
        """Generations of ``triton_model`` that may run at once: one engine's worth for each
        replica in rotation (at least one, so a model whose replicas are all out is still
        tried, and refused by the backend rather than here)."""
        per_replica = self._capacities.get(triton_model, self._settings.max_in_flight)
        replicas = 1 if self._replicas is None else max(self._replicas(triton_model), 1)
        return per_replica * replicas

    def gate(self, triton_model: str) -> ModelGate:
        gate = self._gates.get(triton_model)
        if gate is None:
            gate = ModelGate(
                triton_model,
                lambda: self.capacity(triton_model),
                self._settings.max_queue,
                self._settings.queue_timeout_s,
            )
            self._gates[triton_model] = gate
        return gate

    def gates(self) -> list[ModelGate]:
        return [self._gates[name] for name in sorted(self._gates)]

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    def drain_deadline(self) -> float | None:
        """Event-loop time by which running requests must end, once draining has begun."""
        return self._drain_deadline

    def begin_drain(self, timeout_s: float) -> None:
        """Admit nothing new; requests still running at ``timeout_s`` from now are ended."""
        if self._drain_deadline is None:
            self._drain_deadline = asyncio.get_running_loop().time() + timeout_s
            logger.info("draining: %d requests in flight, %.1f s to finish", self.busy, timeout_s)

    @property
    def busy(self) -> int:
        """Requests running or waiting for a slot, over all models."""
        return sum(gate.in_flight + gate.waiting for gate in self._gates.values())

    async def wait_idle(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until nothing is running (True) or ``timeout_s`` passes (False)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        while self.busy and loop.time() < until:
            await asyncio.sleep(poll_s)
        return not self.busy

    @contextlib.asynccontextmanager
    async def admit(self, triton_model: str, deadline: float | None = None) -> AsyncIterator[None]:
        if self.draining:
            raise ShuttingDownError(
                "The server is shutting down; retry on another replica.",
                headers=dict(_RETRY_AFTER),
            )
        async with self.gate(triton_model).slot(deadline):
            yield


class AdmissionBackend:
    """``InferenceBackend`` that runs each call inside its model's gate."""

    def __init__(self, inner: InferenceBackend, admission: Admission) -> None:
        self._inner = inner
        self.admission = admission

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        gate = self.admission.gate(request.triton_model)
        # One deadline for the slot and the first token: time in the API's queue and time
        # queued inside Triton add up to what the client waits.
        deadline = gate.deadline()
        async with self.admission.admit(request.triton_model, deadline):
            stream = self._inner.generate(request)
            try:
                first = await gate.first_chunk(stream, deadline)
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
        async with self.admission.admit(triton_model):
            return await self._inner.embed(triton_model, texts, request_id, truncate=truncate)

    async def readiness(self, models: Sequence[str]) -> Readiness:
        readiness = await self._inner.readiness(models)
        if not self.admission.draining:
            return readiness
        return dataclasses.replace(readiness, draining=True)

    async def close(self) -> None:
        await self._inner.close()
