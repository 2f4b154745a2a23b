"""TensorRT-LLM's stop request, sent in the background when a generation is abandoned."""

from __future__ import annotations

import asyncio

import numpy as np
from tritonclient.grpc import service_pb2

from api.backend.ensemble import ENABLE_EMPTY_FINAL
from api.backend.stop import Stopper, build_stop_request


def test_stop_request_names_the_llm_model_and_the_request() -> None:
    message = build_stop_request("tensorrt_llm", "req-1-ab12")
    assert (message.model_name, message.id) == ("tensorrt_llm", "req-1-ab12")
    assert message.parameters[ENABLE_EMPTY_FINAL].bool_param
    names = [tensor.name for tensor in message.inputs]
    assert names == ["input_ids", "input_lengths", "request_output_len", "stop"]
    stop = np.frombuffer(message.raw_input_contents[names.index("stop")], dtype=np.bool_)
    assert stop.tolist() == [True]


async def test_stops_are_sent_even_when_the_caller_is_cancelled() -> None:
    sent: list[str] = []

    async def send(message: service_pb2.ModelInferRequest) -> None:
        await asyncio.sleep(0.01)
        sent.append(message.id)

    stopper = Stopper("tensorrt_llm", send)

    async def abandoned() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopper.stop("r1")

    task = asyncio.create_task(abandoned())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stopper.wait(1.0)
    assert sent == ["r1"]


async def test_failures_are_swallowed_and_none_disables() -> None:
    async def broken(message: service_pb2.ModelInferRequest) -> None:
        raise ConnectionError("triton is down")

    stopper = Stopper("tensorrt_llm", broken)
    stopper.stop("r1")
    await stopper.wait(1.0)  # no exception escapes

    disabled = Stopper(None, broken)
    disabled.stop("r2")
    await disabled.wait(1.0)
