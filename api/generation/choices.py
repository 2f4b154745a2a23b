"""Several choices (``n``, or a list of prompts) generated concurrently and merged in order.

Each choice is its own Triton request with its own id (postprocessing keeps detokenizer state
per request id) and, when a seed is given, its own derived seed, so choices differ but a
repeated request reproduces them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from api.backend.protocol import InferenceBackend
from api.backend.types import GenerationChunk, GenerationRequest
from api.generation.assembly import ReplyState, primed, text_deltas

ChunkStream = AsyncGenerator[GenerationChunk, None]


@dataclass(frozen=True, slots=True)
class ChoiceEvent:
    """A text delta of choice ``index``; ``text is None`` marks that choice as finished."""

    index: int
    text: str | None


def fan_out(request: GenerationRequest, n: int, first_index: int = 0) -> list[GenerationRequest]:
    """``n`` copies of ``request`` with unique ids and per-choice seeds."""
    if n == 1 and first_index == 0:
        return [request]
    copies = []
    for offset in range(n):
        index = first_index + offset
        params = request.params
        if params.seed is not None:
            # The engine's seed is a uint64: derived seeds wrap within it.
            params = dataclasses.replace(params, seed=(params.seed + index) % 2**64)
        copies.append(
            dataclasses.replace(request, request_id=f"{request.request_id}-{index}", params=params)
        )
    return copies


async def start_streams(
    backend: InferenceBackend, requests: Sequence[GenerationRequest]
) -> list[ChunkStream]:
    """Start every request and wait for each first response (errors surface before the 200)."""
    if len(requests) == 1:
        # Most requests: awaited here, not in a task of gather's, whose start and end cost two
        # more passes of the event loop between the first token and the client.
        return [await primed(backend.generate(requests[0]))]
    results = await asyncio.gather(
        *(primed(backend.generate(request)) for request in requests), return_exceptions=True
    )
    streams = [result for result in results if not isinstance(result, BaseException)]
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        await asyncio.gather(*(stream.aclose() for stream in streams))
        raise failures[0]
    return streams


async def choice_events(
    streams: Sequence[ChunkStream],
    requests: Sequence[GenerationRequest],
    states: Sequence[ReplyState],
) -> AsyncGenerator[ChoiceEvent, None]:
    """Text deltas of all choices as they arrive; each choice ends with a ``None`` event."""
    if len(streams) == 1:
        async for text in text_deltas(streams[0], requests[0].params, states[0]):
            yield ChoiceEvent(0, text)
        yield ChoiceEvent(0, None)
        return
    queue: asyncio.Queue[ChoiceEvent | BaseException] = asyncio.Queue()
    pumps = [
        asyncio.create_task(_pump(index, stream, request, state, queue))
        for index, (stream, request, state) in enumerate(
            zip(streams, requests, states, strict=True)
        )
    ]
    finished = 0
    try:
        while finished < len(pumps):
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            finished += item.text is None
            yield item
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(
    index: int,
    stream: ChunkStream,
    request: GenerationRequest,
    state: ReplyState,
    queue: asyncio.Queue[ChoiceEvent | BaseException],
) -> None:
    try:
        async for text in text_deltas(stream, request.params, state):
            queue.put_nowait(ChoiceEvent(index, text))
        queue.put_nowait(ChoiceEvent(index, None))
    except Exception as exc:
        queue.put_nowait(exc)
