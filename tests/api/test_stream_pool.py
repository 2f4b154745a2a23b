"""The idle-stream pool: which streams are reused, and which are cancelled instead."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from tritonclient.grpc import service_pb2

from api.backend.stream_pool import StreamPool
from api.backend.triton_grpc import TritonGrpcBackend
from api.backend.types import GenerationRequest, SamplingParams
from api.errors import BackendUnavailableError
from api.settings import TritonSettings


class FakeCall:
    def __init__(self) -> None:
        self.finished = False
        self.cancelled = False

    def done(self) -> bool:
        return self.finished or self.cancelled

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pool(max_idle: int = 4, ttl: float = 60.0) -> tuple[StreamPool, list[FakeCall], Clock]:
    opened: list[FakeCall] = []
    clock = Clock()

    def open_stream() -> Any:
        opened.append(FakeCall())
        return opened[-1]

    return StreamPool(open_stream, max_idle=max_idle, idle_ttl_s=ttl, clock=clock), opened, clock


def test_a_stream_given_back_is_reused_by_the_next_request() -> None:
    streams, opened, _ = pool()
    first = streams.take()
    streams.give_back(first)
    second = streams.take()
    assert second is first and second.reused and len(opened) == 1
    assert not cast(FakeCall, second.call).cancelled


def test_concurrent_requests_each_get_their_own_stream() -> None:
    streams, opened, _ = pool()
    taken = [streams.take() for _ in range(3)]
    assert len({id(stream.call) for stream in taken}) == 3 and len(opened) == 3
    for stream in taken:
        streams.give_back(stream)
    assert streams.idle == 3


def test_a_discarded_stream_is_cancelled_and_never_reused() -> None:
    streams, opened, _ = pool()
    stream = streams.take()
    streams.discard(stream)
    assert opened[0].cancelled and streams.idle == 0
    assert streams.take().call is not opened[0]


def test_a_stream_that_ended_while_idle_is_skipped() -> None:
    streams, opened, _ = pool()
    stream = streams.take()
    streams.give_back(stream)
    opened[0].finished = True  # e.g. Triton restarted and the RPC failed
    assert streams.take().call is opened[1]
    assert opened[0].cancelled


def test_a_stream_idle_longer_than_its_ttl_is_closed() -> None:
    streams, opened, clock = pool(ttl=10.0)
    streams.give_back(streams.take())
    clock.now = 10.5
    assert streams.take().call is opened[1] and opened[0].cancelled


def test_streams_left_under_busier_ones_still_expire() -> None:
    streams, opened, clock = pool(ttl=10.0)
    first, second = streams.take(), streams.take()
    streams.give_back(first)
    streams.give_back(second)
    for _ in range(3):  # one request at a time keeps reusing the warmest stream
        clock.now += 6.0
        streams.give_back(streams.take())
    assert opened[0].cancelled and not opened[1].cancelled and streams.idle == 1


def test_no_more_than_max_idle_streams_are_kept() -> None:
    streams, opened, _ = pool(max_idle=2)
    taken = [streams.take() for _ in range(3)]
    for stream in taken:
        streams.give_back(stream)
    assert streams.idle == 2 and opened[2].cancelled


def test_max_idle_zero_opens_a_stream_per_request() -> None:
    streams, opened, _ = pool(max_idle=0)
    streams.give_back(streams.take())
    streams.take()
    assert len(opened) == 2 and opened[0].cancelled


def test_close_cancels_the_idle_streams() -> None:
    streams, opened, _ = pool()
    for stream in [streams.take(), streams.take()]:
        streams.give_back(stream)
    streams.close()
    assert streams.idle == 0 and all(call.cancelled for call in opened)


class ScriptedCall(FakeCall):
    """A stream whose writes fail (a connection lost while idle) or answer with one reply."""

    def __init__(self, broken: bool) -> None:
        super().__init__()
        self.broken = broken
        self.written: list[service_pb2.ModelInferRequest] = []
        self.replies: list[service_pb2.ModelStreamInferResponse] = []

    async def write(self, message: service_pb2.ModelInferRequest) -> None:
        if self.broken:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone"
            )
        self.written.append(message)
        reply = service_pb2.ModelStreamInferResponse()
        reply.infer_response.id = message.id
        reply.infer_response.parameters["triton_final_response"].bool_param = True
        self.replies.append(reply)

    async def read(self) -> service_pb2.ModelStreamInferResponse:
        return self.replies.pop(0)


async def test_a_reused_stream_that_died_while_idle_is_replaced_before_the_request() -> None:
    backend = TritonGrpcBackend(TritonSettings(url="127.0.0.1:1", stop_model=None))
    dead, fresh = ScriptedCall(broken=True), ScriptedCall(broken=False)
    opened = iter([dead, fresh])
    backend._pool = StreamPool(lambda: cast(Any, next(opened)), max_idle=4, idle_ttl_s=60)
    backend._pool.give_back(backend._pool.take())  # the dead one waits as if idle
    request = GenerationRequest("r1", "ensemble", SamplingParams(max_tokens=1), prompt="x")
    chunks = [chunk async for chunk in backend.generate(request)]
    assert [chunk.final for chunk in chunks] == [True]
    assert dead.cancelled and len(fresh.written) == 1
    assert backend._pool.idle == 1  # the new stream ended cleanly and is kept
    await backend.close()


async def test_a_new_stream_that_fails_is_not_retried() -> None:
    backend = TritonGrpcBackend(TritonSettings(url="127.0.0.1:1", stop_model=None))
    broken = ScriptedCall(broken=True)
    backend._pool = StreamPool(lambda: cast(Any, broken), max_idle=4, idle_ttl_s=60)
    request = GenerationRequest("r1", "ensemble", SamplingParams(max_tokens=1), prompt="x")
    with pytest.raises(BackendUnavailableError):
        [chunk async for chunk in backend.generate(request)]
    assert broken.cancelled and backend._pool.idle == 0
    await backend.close()
