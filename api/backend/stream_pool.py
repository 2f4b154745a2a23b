"""Idle ``ModelStreamInfer`` streams, reused one request at a time.

Opening a bidirectional stream per request costs an HTTP/2 stream set-up, a request-iterator
task on the client and a stream state in Triton: about half a millisecond of time to first
token. perf_analyzer keeps one stream per client and sends request after request on it; the
API does the same. A stream carries one request at a time, so responses need no
demultiplexing and a stream's failure touches only its own request. A stream goes back to
the pool only after its request ended cleanly with the final response; one left early (client
gone, deadline, error) is cancelled, which cancels its request inside Triton as before.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import grpc


@dataclass
class PooledStream:
    call: grpc.aio.StreamStreamCall
    idle_since: float = 0.0
    reused: bool = False


class StreamPool:
    """At most ``max_idle`` idle streams; each is dropped after ``idle_ttl_s`` unused."""

    def __init__(
        self,
        open_stream: Callable[[], grpc.aio.StreamStreamCall],
        max_idle: int,
        idle_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_stream = open_stream
        self._max_idle = max_idle
        self._idle_ttl_s = idle_ttl_s
        self._clock = clock
        # Oldest first: streams are taken from the right (the warmest) and expire from the left.
        self._idle: deque[PooledStream] = deque()

    @property
    def idle(self) -> int:
        return len(self._idle)

    def take(self) -> PooledStream:
        """A live idle stream, or a new one."""
        now = self._clock()
        while self._idle:
            stream = self._idle.pop()
            # done(): the RPC ended while idle (Triton restarted, connection lost).
            if stream.call.done() or now - stream.idle_since > self._idle_ttl_s:
                stream.call.cancel()
                continue
            stream.reused = True
            return stream
        return PooledStream(self.open())

    def open(self) -> grpc.aio.StreamStreamCall:
        """A new stream, bypassing the idle ones."""
        return self._open_stream()

    def give_back(self, stream: PooledStream) -> None:
        """Return a stream whose request has ended with its final response."""
        if len(self._idle) >= self._max_idle or stream.call.done():
            stream.call.cancel()
            return
        stream.idle_since = self._clock()
        self._idle.append(stream)
        # Streams below a busy top would never be reached by take(): expire them here.
        while self._idle[0].idle_since < stream.idle_since - self._idle_ttl_s:
            self._idle.popleft().call.cancel()

    def discard(self, stream: PooledStream) -> None:
        """Cancel a stream whose request did not end cleanly (and so the request in Triton)."""
        stream.call.cancel()

    def close(self) -> None:
        for stream in self._idle:
            stream.call.cancel()
        self._idle.clear()
