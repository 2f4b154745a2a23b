"""The idle-stream pool: which streams are reused, and which are cancelled instead."""

from __future__ import annotations

from typing import Any, cast

from api.backend.stream_pool import StreamPool


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
