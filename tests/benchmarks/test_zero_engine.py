from __future__ import annotations

import threading
from collections.abc import Sequence

from benchmarks.zero_engine import ZeroCostEngine, ZeroStream


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[list[int], bool]] = []

    def __call__(self, token_ids: Sequence[int], final: bool) -> None:
        self.sent.append((list(token_ids), final))


def test_streams_are_served_round_robin_one_token_per_step() -> None:
    engine = ZeroCostEngine([7, 8, 9])
    first, second = Sink(), Sink()
    engine.submit(ZeroStream(output_len=2, emit=first))
    engine.submit(ZeroStream(output_len=4, emit=second))
    assert engine.step() is True
    assert first.sent == [([7], False)] and second.sent == [([7], False)]
    assert engine.step() is True
    assert first.sent[-1] == ([8], True)
    while engine.step():
        pass
    assert second.sent == [([7], False), ([8], False), ([9], False), ([7], True)]


def test_non_streaming_gets_every_token_at_once() -> None:
    engine = ZeroCostEngine([1, 2])
    sink = Sink()
    engine.submit(ZeroStream(output_len=5, emit=sink, streaming=False))
    assert engine.step() is False
    assert sink.sent == [([1, 2, 1, 2, 1], True)]


def test_cancelled_requests_end_with_an_empty_final_response() -> None:
    engine = ZeroCostEngine([1], cancel_check_every=2)
    sink = Sink()
    engine.submit(ZeroStream(output_len=10, emit=sink, is_cancelled=lambda: True))
    while engine.step():
        pass
    assert sink.sent == [([1], False), ([1], False), ([], True)]


def test_a_failing_sender_drops_only_its_request() -> None:
    engine = ZeroCostEngine([1])
    healthy = Sink()

    def broken(token_ids: Sequence[int], final: bool) -> None:
        raise RuntimeError("client gone")

    engine.submit(ZeroStream(output_len=2, emit=broken))
    engine.submit(ZeroStream(output_len=2, emit=healthy))
    while engine.step():
        pass
    assert healthy.sent == [([1], False), ([1], True)]


def test_the_thread_serves_until_closed() -> None:
    engine = ZeroCostEngine([3])
    done = threading.Event()
    sent: list[bool] = []

    def emit(token_ids: Sequence[int], final: bool) -> None:
        sent.append(final)
        if final:
            done.set()

    engine.start()
    engine.submit(ZeroStream(output_len=3, emit=emit))
    assert done.wait(5)
    engine.close()
    assert sent == [False, False, True]
