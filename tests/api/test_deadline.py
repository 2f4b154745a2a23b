"""Deadlines: per-model timeouts end the call with 504 and close (cancel) the inner stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from api.backend.deadline import DeadlineBackend, IdleBounds, model_timeouts
from api.backend.types import GenerationChunk, GenerationRequest, SamplingParams
from api.errors import BackendTimeoutError, ShuttingDownError
from api.settings import ModelKind, ResilienceSettings, ServedModel, Settings
from tests.api.fakes import FakeBackend


def request(model: str = "ensemble") -> GenerationRequest:
    return GenerationRequest(
        request_id="r", triton_model=model, params=SamplingParams(max_tokens=6), prompt="x"
    )


def test_per_model_override_wins_and_shared_models_take_the_longest() -> None:
    settings = Settings(
        request_timeout_s=30,
        models=[
            ServedModel(id="a", kind=ModelKind.CHAT, triton_model="llm", request_timeout_s=5),
            ServedModel(id="b", kind=ModelKind.CHAT, triton_model="llm", request_timeout_s=9),
            ServedModel(id="c", kind=ModelKind.EMBEDDING, triton_model="emb"),
        ],
    )
    assert model_timeouts(settings) == {"llm": 9, "emb": 30}


async def test_a_slow_stream_ends_with_504_and_is_closed() -> None:
    slow = FakeBackend(chunk_delay_s=0.05)
    guarded = DeadlineBackend(slow, {"ensemble": 0.12}, default_timeout_s=10)
    seen: list[str] = []
    with pytest.raises(BackendTimeoutError) as raised:
        async for chunk in guarded.generate(request()):
            seen.append(chunk.text)
    assert raised.value.status_code == 504
    assert 1 < len(seen) < 6  # some text arrived before the deadline
    assert slow.closed_streams == 1  # the inner stream (the Triton call) was cancelled


async def test_other_models_keep_the_default() -> None:
    slow = FakeBackend(chunk_delay_s=0.01)
    guarded = DeadlineBackend(slow, {"embedding": 0.001}, default_timeout_s=10)
    chunks = [chunk async for chunk in guarded.generate(request())]
    assert chunks[-1].final


async def test_slow_embeddings_time_out() -> None:
    guarded = DeadlineBackend(FakeBackend(chunk_delay_s=1), {}, default_timeout_s=0.02)
    with pytest.raises(BackendTimeoutError):
        await guarded.embed("embedding", ["a"], "r")


async def test_the_drain_deadline_ends_running_streams_with_503() -> None:
    loop = asyncio.get_running_loop()
    drain_at: list[float] = []
    slow = FakeBackend(chunk_delay_s=0.05)
    guarded = DeadlineBackend(
        slow, {}, default_timeout_s=10, drain_deadline=lambda: drain_at[0] if drain_at else None
    )
    stream = guarded.generate(request())
    await anext(stream)
    drain_at.append(loop.time() + 0.03)
    with pytest.raises(ShuttingDownError):
        async for _ in stream:
            pass
    assert slow.closed_streams == 1


async def test_a_deadline_that_passes_between_chunks_ends_the_stream_at_the_next_one() -> None:
    fast = FakeBackend()
    guarded = DeadlineBackend(fast, {"ensemble": 0.05}, default_timeout_s=10)
    stream = guarded.generate(request())
    await anext(stream)
    # The consumer's own work is never interrupted, even when it outlasts the deadline ...
    await asyncio.sleep(0.08)
    # ... the next chunk is refused instead.
    with pytest.raises(BackendTimeoutError):
        await anext(stream)
    assert fast.closed_streams == 1


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    slow = FakeBackend(chunk_delay_s=0.05)
    guarded = DeadlineBackend(slow, {"ensemble": 5}, default_timeout_s=10)

    async def consume() -> None:
        async for _ in guarded.generate(request()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.closed_streams == 1


async def test_a_stream_read_by_several_tasks_times_out_in_the_one_waiting() -> None:
    slow = FakeBackend(chunk_delay_s=0.05)
    guarded = DeadlineBackend(slow, {"ensemble": 0.12}, default_timeout_s=10)
    stream = guarded.generate(request())
    # The first chunk is awaited in another task (as start_streams does), the rest here.
    await asyncio.create_task(anext(stream))
    with pytest.raises(BackendTimeoutError):
        async for _ in stream:
            pass
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # our own cancel was taken back


async def test_one_timer_serves_a_whole_stream_and_is_cancelled_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: object, *args: object) -> asyncio.TimerHandle:
        timer = call_at(when, callback, *args)  # type: ignore[arg-type]
        timers.append(timer)
        return timer

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    drain_at: list[float] = []
    guarded = DeadlineBackend(
        FakeBackend(),
        {},
        default_timeout_s=600,
        drain_deadline=lambda: drain_at[0] if drain_at else None,
    )
    chunks = [chunk async for chunk in guarded.generate(request())]
    assert len(chunks) > 2
    assert len(timers) == 1 and timers[0].cancelled()  # not one per chunk, not left behind

    # A drain that begins mid-stream moves the one timer to the sooner deadline.
    timers.clear()
    stream = guarded.generate(request())
    await anext(stream)
    drain_at.append(loop.time() + 60)
    rest = [chunk async for chunk in stream]
    assert rest and len(timers) == 2 and all(timer.cancelled() for timer in timers)
    assert timers[1].when() == pytest.approx(drain_at[0])


class StallingBackend(FakeBackend):
    """Sends ``chunks`` chunks, then nothing ever again (an engine that died mid-stream)."""

    def __init__(self, chunks: int) -> None:
        super().__init__()
        self.chunks = chunks

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        try:
            for _ in range(self.chunks):
                yield GenerationChunk(text="x", completion_tokens=1)
            await asyncio.Event().wait()
            yield GenerationChunk(final=True)  # never reached
        finally:
            self.closed_streams += 1


async def test_a_stream_that_goes_silent_ends_at_the_idle_bound_not_the_request_timeout() -> None:
    dead = StallingBackend(chunks=3)
    guarded = DeadlineBackend(
        dead, {}, default_timeout_s=600, idle=IdleBounds(first_response_s=5, idle_s=0.1)
    )
    seen = 0
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError) as raised:
        async for _ in guarded.generate(request()):
            seen += 1
    assert 0.1 <= time.monotonic() - started < 1
    assert seen == 3
    assert "sent nothing for 0.1 s" in raised.value.message
    assert dead.closed_streams == 1  # the Triton call is cancelled


async def test_a_model_that_never_answers_ends_at_the_first_response_bound() -> None:
    dead = StallingBackend(chunks=0)
    guarded = DeadlineBackend(
        dead, {}, default_timeout_s=600, idle=IdleBounds(first_response_s=0.1, idle_s=5)
    )
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError) as raised:
        await anext(guarded.generate(request()))
    assert time.monotonic() - started < 1
    assert "did not start answering within 0.1 s" in raised.value.message


async def test_embeddings_are_bounded_by_the_first_response_bound() -> None:
    guarded = DeadlineBackend(
        FakeBackend(chunk_delay_s=5), {}, default_timeout_s=600, idle=IdleBounds(0.05, 5)
    )
    with pytest.raises(BackendTimeoutError):
        await guarded.embed("embedding", ["a"], "r")


async def test_the_idle_bound_is_per_wait_so_a_long_steady_stream_finishes() -> None:
    # Each chunk comes within the bound though the whole stream takes several bounds.
    steady = FakeBackend(chunk_delay_s=0.04)
    guarded = DeadlineBackend(steady, {}, default_timeout_s=600, idle=IdleBounds(0.1, 0.1))
    started = time.monotonic()
    chunks = [chunk async for chunk in guarded.generate(request())]
    assert chunks[-1].final
    assert time.monotonic() - started > 0.2


async def test_time_the_consumer_spends_between_chunks_is_not_idleness() -> None:
    guarded = DeadlineBackend(FakeBackend(), {}, default_timeout_s=600, idle=IdleBounds(0.05, 0.05))
    chunks = []
    async for chunk in guarded.generate(request()):
        chunks.append(chunk)
        await asyncio.sleep(0.1)  # a slow client: the model is not the one being silent
    assert chunks[-1].final


async def test_idle_bounds_cost_no_timer_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: object, *args: object) -> asyncio.TimerHandle:
        timer = call_at(when, callback, *args)  # type: ignore[arg-type]
        timers.append(timer)
        return timer

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    guarded = DeadlineBackend(FakeBackend(), {}, default_timeout_s=600, idle=IdleBounds(60, 30))
    chunks = [chunk async for chunk in guarded.generate(request())]
    assert len(chunks) > 5
    # The first wait's timer, then one moved to the sooner idle bound; none per chunk.
    assert len(timers) == 2 and all(timer.cancelled() for timer in timers)


def test_idle_bounds_come_from_the_resilience_settings() -> None:
    options = ResilienceSettings(first_response_timeout_s=12, stream_idle_timeout_s=3)
    assert IdleBounds.from_settings(options) == IdleBounds(first_response_s=12, idle_s=3)
