"""A generation engine that costs nothing: it emits filler tokens as fast as it can.

Used by the zero-cost ``tensorrt_llm`` model (``benchmarks/model_repository/zero_cost``) so the
real preprocessing -> tensorrt_llm -> postprocessing ensemble runs with an engine that does no
compute. Active requests are served round-robin, one token each per step, like in-flight
batching with a free forward pass. Nothing here imports Triton; the model's ``model.py`` wires
``emit`` to a response sender.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Emits the token ids of one response and whether it is the request's last.
Emit = Callable[[Sequence[int], bool], None]

FILLER_TEXT = " the quick brown fox jumps over the lazy dog"


@dataclass(slots=True)
class ZeroStream:
    """One request: how many tokens it wants and where its responses go."""

    output_len: int
    emit: Emit
    streaming: bool = True
    is_cancelled: Callable[[], bool] = lambda: False
    sent: int = 0


class ZeroCostEngine:
    """Round-robin over active requests; one filler token per request per step."""

    def __init__(self, token_ids: Sequence[int], cancel_check_every: int = 16) -> None:
        if not token_ids:
            raise ValueError("the engine needs at least one filler token id")
        self._token_ids = tuple(token_ids)
        self._cancel_check_every = max(cancel_check_every, 1)
        self._incoming: queue.SimpleQueue[ZeroStream | None] = queue.SimpleQueue()
        self._active: list[ZeroStream] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, stream: ZeroStream) -> None:
        self._incoming.put(stream)

    def tokens(self, start: int, count: int) -> list[int]:
        """``count`` filler ids continuing the cycle at position ``start``."""
        ids = self._token_ids
        return [ids[(start + offset) % len(ids)] for offset in range(count)]

    def step(self) -> bool:
        """Admit new requests, send one response to each active one; False when idle."""
        self._admit(block=not self._active)
        if self._closed:
            return False
        still_active: list[ZeroStream] = []
        for stream in self._active:
            try:
                if self._serve(stream):
                    still_active.append(stream)
            except Exception:
                # A broken sender (client gone) ends that request only.
                logger.exception("dropping a zero-cost request after a send failure")
        self._active = still_active
        return bool(self._active)

    def _admit(self, block: bool) -> None:
        try:
            item = self._incoming.get(block=block)
            while True:
                if item is None:
                    self._closed = True
                    return
                self._active.append(item)
                item = self._incoming.get_nowait()
        except queue.Empty:
            return

    def _serve(self, stream: ZeroStream) -> bool:
        """Send the next response of ``stream``; whether it still has more to send."""
        if stream.output_len <= 0:
            stream.emit([], True)
            return False
        if not stream.streaming:
            stream.emit(self.tokens(0, stream.output_len), True)
            return False
        if stream.sent % self._cancel_check_every == 0 and stream.sent and stream.is_cancelled():
            stream.emit([], True)
            return False
        stream.sent += 1
        last = stream.sent >= stream.output_len
        stream.emit(self.tokens(stream.sent - 1, 1), last)
        return not last

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zero-cost-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self.step()

    def close(self) -> None:
        self._incoming.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
