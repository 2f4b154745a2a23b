"""Admission control: bounded in-flight and queue per model, refusals, draining."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import pytest

from api.backend.admission import Admission, AdmissionBackend, ModelGate, model_capacities
from api.backend.types import GenerationChunk, GenerationRequest, SamplingParams
from api.errors import ModelOverloadedError, ShuttingDownError
from api.settings import ResilienceSettings, Settings, default_models
from tests.api.fakes import FakeBackend


async def hold(gate: ModelGate, release: asyncio.Event, entered: list[int], tag: int) -> None:
    async with gate.slot():
        entered.append(tag)
        await release.wait()


async def test_gate_runs_up_to_the_limit_queues_then_refuses() -> None:
    gate = ModelGate("m", max_in_flight=2, max_queue=1, queue_timeout_s=5)
    release = asyncio.Event()
    entered: list[int] = []
    tasks = [asyncio.create_task(hold(gate, release, entered, tag)) for tag in range(3)]
    await asyncio.sleep(0.01)
    assert (gate.in_flight, gate.waiting, entered) == (2, 1, [0, 1])
    with pytest.raises(ModelOverloadedError) as refused:
        async with gate.slot():
            pass
    assert refused.value.status_code == 503
    assert refused.value.code == "model_overloaded"
    assert refused.value.headers["Retry-After"] == "1"
    release.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2]  # the queued one ran once a slot freed
    assert (gate.in_flight, gate.waiting, gate.rejected_total) == (0, 0, 1)


async def test_waiting_longer_than_the_queue_timeout_is_refused() -> None:
    gate = ModelGate("m", max_in_flight=1, max_queue=5, queue_timeout_s=0.05)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(gate, release, [], 0))
    await asyncio.sleep(0.01)
    with pytest.raises(ModelOverloadedError):
        async with gate.slot():
            pass
    assert gate.waiting == 0
    release.set()
    await holder


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    gate = ModelGate("m", max_in_flight=1, max_queue=5, queue_timeout_s=5)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(gate, release, [], 0))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(hold(gate, release, [], 1))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert gate.waiting == 0
    release.set()
    await holder
    assert gate.in_flight == 0


def request() -> GenerationRequest:
    return GenerationRequest(
        request_id="r", triton_model="ensemble", params=SamplingParams(max_tokens=3), prompt="x"
    )


async def test_backend_layer_holds_a_slot_for_the_whole_stream() -> None:
    admission = Admission(ResilienceSettings(max_in_flight=1, max_queue=0))
    guarded = AdmissionBackend(FakeBackend(), admission)
    stream = guarded.generate(request())
    await anext(stream)
    assert admission.gate("ensemble").in_flight == 1
    with pytest.raises(ModelOverloadedError):
        await anext(guarded.generate(request()))
    await guarded.embed("embedding", ["other model"], "r")  # its own gate
    await stream.aclose()
    assert admission.busy == 0


async def test_draining_refuses_new_work_and_waits_for_running() -> None:
    admission = Admission(ResilienceSettings())
    guarded = AdmissionBackend(FakeBackend(), admission)
    stream = guarded.generate(request())
    await anext(stream)
    admission.begin_drain(5.0)
    assert (await guarded.readiness(["ensemble"])).draining
    with pytest.raises(ShuttingDownError):
        await guarded.embed("embedding", ["a"], "r")
    assert not await admission.wait_idle(0.05)
    rest = [chunk async for chunk in stream]
    assert rest[-1].final
    assert await admission.wait_idle(0.05)


@dataclass
class SlowFirstToken:
    """A backend whose engine takes ``delay_s`` before the first token (a full batch)."""

    delay_s: float

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        await asyncio.sleep(self.delay_s)
        yield GenerationChunk(text="x", completion_tokens=1)
        yield GenerationChunk(final=True)


async def test_the_queue_timeout_covers_the_wait_for_the_first_token() -> None:
    admission = Admission(ResilienceSettings(max_in_flight=4, queue_timeout_s=0.2))
    slow = AdmissionBackend(SlowFirstToken(0.5), admission)  # type: ignore[arg-type]
    with pytest.raises(ModelOverloadedError) as refused:
        await anext(slow.generate(request()))
    assert refused.value.headers["Retry-After"] == "1"
    gate = admission.gate("ensemble")
    assert (gate.in_flight, gate.rejected_total) == (0, 1)  # its slot was given back
    fast = AdmissionBackend(SlowFirstToken(0.05), admission)  # type: ignore[arg-type]
    assert [chunk.text async for chunk in fast.generate(request())] == ["x", ""]


async def test_queueing_and_the_first_token_share_one_deadline() -> None:
    # Each wait alone fits in 0.5 s; together (0.3 s for a slot, 0.3 s for the token) not.
    admission = Admission(ResilienceSettings(max_in_flight=1, queue_timeout_s=0.5))
    guarded = AdmissionBackend(SlowFirstToken(0.3), admission)  # type: ignore[arg-type]
    first = asyncio.create_task(anext(guarded.generate(request())))
    await asyncio.sleep(0.01)
    with pytest.raises(ModelOverloadedError):
        await anext(guarded.generate(request()))
    assert (await first).text == "x"


def test_admission_follows_each_models_engine() -> None:
    chat, embedding = default_models()
    settings = Settings(
        models=[
            chat,
            embedding,
            chat.model_copy(update={"id": "big", "triton_model": "big", "engine_slots": 200}),
            chat.model_copy(update={"id": "set", "triton_model": "set", "max_in_flight": 3}),
        ]
    )
    assert model_capacities(settings) == {"ensemble": 10, "embedding": 64, "big": 64, "set": 3}
    shared = chat.model_copy(update={"id": "other", "aliases": [], "max_in_flight": 4})
    assert model_capacities(Settings(models=[chat, shared]))["ensemble"] == 4
    admission = Admission(settings.resilience, model_capacities(settings))
    assert admission.gate("ensemble").max_in_flight == 10
    assert admission.capacity("unknown") == 64


async def test_a_larger_limit_hands_its_slots_to_the_waiting_in_order() -> None:
    limit = [1]
    gate = ModelGate("m", max_in_flight=lambda: limit[0], max_queue=5, queue_timeout_s=5)
    release = asyncio.Event()
    entered: list[int] = []
    tasks = [asyncio.create_task(hold(gate, release, entered, tag)) for tag in range(3)]
    await asyncio.sleep(0.01)
    assert (gate.in_flight, gate.waiting, entered) == (1, 2, [0])
    limit[0] = 3  # a replica joined: the next arrival hands the new slots out first
    late = asyncio.create_task(hold(gate, release, entered, 3))
    await asyncio.sleep(0.01)
    assert entered == [0, 1, 2] and gate.waiting == 1
    release.set()
    await asyncio.gather(*tasks, late)
    assert entered == [0, 1, 2, 3]
    assert (gate.in_flight, gate.waiting) == (0, 0)
