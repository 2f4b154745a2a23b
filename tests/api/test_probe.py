"""The active probe: a model that stops answering is found and cut off; one that answers again
closes its breaker at once, however long the breaker's back-off had grown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from api.backend.breaker import BreakerBackend, BreakerBoard, BreakerPolicy, BreakerState
from api.backend.probe import ModelProber, ProbeTarget
from api.backend.types import EmbeddingInputs, EmbeddingResult, GenerationChunk, GenerationRequest
from api.errors import BackendUnavailableError, CircuitOpenError, InvalidRequestError
from api.settings import ModelKind, ResilienceSettings, ServedModel
from tests.api.fakes import FakeBackend

CHAT = ProbeTarget("ensemble", ModelKind.CHAT)
EMBEDDING = ProbeTarget("embedding", ModelKind.EMBEDDING)


class DeadModel(FakeBackend):
    """Accepts requests and never answers them (a Python-backend stub that was killed)."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = True

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if self.dead:
            self.requests.append(request)
            await asyncio.Event().wait()
        async for chunk in super().generate(request):
            yield chunk

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        if self.dead:
            await asyncio.Event().wait()
        return await super().embed(triton_model, texts, request_id, truncate=truncate)


def prober(
    backend: FakeBackend, board: BreakerBoard, interval_s: float = 5, timeout_s: float = 0.05
) -> ModelProber:
    options = ResilienceSettings(probe_interval_s=interval_s, probe_timeout_s=timeout_s)
    return ModelProber(backend, board, [CHAT, EMBEDDING], options)


def test_one_target_per_triton_model_with_its_kind() -> None:
    models = [
        ServedModel(id="a", kind=ModelKind.CHAT, triton_model="ensemble"),
        ServedModel(id="b", kind=ModelKind.CHAT, triton_model="ensemble"),
        ServedModel(id="c", kind=ModelKind.EMBEDDING, triton_model="embedding"),
    ]
    assert ProbeTarget.of(models) == [EMBEDDING, CHAT]


async def test_a_model_that_answers_passes_with_a_one_token_generation() -> None:
    backend, board = FakeBackend(), BreakerBoard(BreakerPolicy())
    assert await prober(backend, board).probe(CHAT)
    assert await prober(backend, board).probe(EMBEDDING)
    (request,) = backend.requests
    assert request.params.max_tokens == 1 and request.request_id.startswith("probe-")
    assert backend.embedded == [["ping"]]
    assert backend.closed_streams == 1
    assert board["ensemble"].state is BreakerState.CLOSED


async def test_a_model_that_does_not_answer_is_held_open_and_reported_unresponsive() -> None:
    dead, board = DeadModel(), BreakerBoard(BreakerPolicy())
    started = time.monotonic()
    assert not await prober(dead, board, timeout_s=0.05).probe(CHAT)
    assert time.monotonic() - started < 1
    breaker = board["ensemble"]
    assert breaker.state is BreakerState.OPEN
    assert breaker.degraded() == "unresponsive"
    assert breaker.unresponsive is not None and "0.05 s" in breaker.unresponsive
    # Callers fail fast instead of hanging on the dead model ...
    guarded = BreakerBackend(dead, board)
    with pytest.raises(CircuitOpenError):
        await anext(guarded.generate(dead.requests[0]))
    # ... and readiness names it, though Triton says the model is ready.
    readiness = await guarded.readiness(["ensemble", "embedding"])
    assert readiness.models == {"ensemble": True, "embedding": True}
    assert readiness.degraded == {"ensemble": "unresponsive"}
    assert not readiness.ready


async def test_a_backend_fault_trips_but_a_refusal_means_the_model_is_alive() -> None:
    backend, board = FakeBackend(), BreakerBoard(BreakerPolicy())
    backend.fail_before_first = BackendUnavailableError("connection refused")
    assert not await prober(backend, board).probe(CHAT)
    assert "connection refused" in (board["ensemble"].unresponsive or "")
    backend.fail_before_first = InvalidRequestError("invalid_request: no")
    assert await prober(backend, board).probe(CHAT)
    assert board["ensemble"].degraded() is None


async def test_a_probe_that_succeeds_closes_the_breaker_whatever_its_back_off() -> None:
    now = [0.0]
    board = BreakerBoard(BreakerPolicy(failure_threshold=1, max_open_s=600), clock=lambda: now[0])
    breaker = board["ensemble"]
    breaker.on_failure(probe=False)
    for _ in range(8):  # Triton down a long while: the back-off grew to minutes
        now[0] += 1000
        assert breaker.state is BreakerState.HALF_OPEN
        breaker.before_call()
        breaker.on_failure(probe=True)
    assert breaker.retry_after_s() > 60
    assert await prober(FakeBackend(), board).probe(CHAT)  # Triton is back
    assert breaker.state is BreakerState.CLOSED
    assert breaker.before_call() is False  # traffic flows at once


async def test_only_silent_or_broken_models_are_due() -> None:
    now = [100.0]
    board = BreakerBoard(BreakerPolicy(failure_threshold=1), clock=lambda: now[0])
    backend = FakeBackend()
    probes = prober(backend, board, interval_s=5)
    assert probes.probe_due() == []  # both answered (were created) just now
    now[0] += 4
    board["ensemble"].answered()  # a stream's chunk
    now[0] += 2
    due = probes.probe_due()
    assert [task.get_name() for task in due] == ["probe-embedding"]
    await asyncio.gather(*due)
    board["ensemble"].on_failure(probe=False)  # real calls opened its breaker
    due = probes.probe_due()
    assert [task.get_name() for task in due] == ["probe-ensemble"]
    assert await due[0]
    assert board["ensemble"].state is BreakerState.CLOSED


async def test_the_prober_runs_until_closed_and_never_probes_a_model_twice_at_once() -> None:
    dead, board = DeadModel(), BreakerBoard(BreakerPolicy())
    probes = prober(dead, board, interval_s=0.02, timeout_s=10)
    probes.start()
    await asyncio.sleep(0.2)  # ten ticks, while the first probe still waits
    assert len(dead.requests) == 1
    await probes.close()
    assert board["ensemble"].state is BreakerState.CLOSED  # cancelled, not a verdict


async def test_a_dead_model_is_found_and_its_recovery_seen_within_a_few_ticks() -> None:
    dead, board = DeadModel(), BreakerBoard(BreakerPolicy())
    probes = prober(dead, board, interval_s=0.05, timeout_s=0.05)
    probes.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if board["ensemble"].unresponsive and board["embedding"].unresponsive:
                break
        assert board["ensemble"].degraded() == board["embedding"].degraded() == "unresponsive"
        dead.dead = False
        for _ in range(100):
            await asyncio.sleep(0.02)
            if board["ensemble"].degraded() is None and board["embedding"].degraded() is None:
                break
        assert board["ensemble"].state is board["embedding"].state is BreakerState.CLOSED
    finally:
        await probes.close()


async def test_probing_off_starts_nothing() -> None:
    probes = prober(DeadModel(), BreakerBoard(BreakerPolicy()), interval_s=0)
    probes.start()
    await probes.close()
