"""The API's own share of a lone request's time to first token, with warm and cold CPU caches.

At concurrency 1 the API's work before a request reaches Triton, and after Triton's first
response, is on the critical path of every first token. ``asgi_bench`` and ``hotpath`` measure
that code in a warm loop, request after request. In the served stack a lone request never finds
it warm: between two requests the model's decode steps (tiny-chat reads its 6.6 MB of weights
once per token) have pushed the API's code and data out of the CPU caches.

``python -m benchmarks.coldpath`` drives the real app (all middleware, auth, limits, usage
records) over the in-process zero-cost backend, one streamed chat request at a time, alternating
warm requests with cold ones: before a cold request, a buffer larger than one core's L2 cache is
written over, as a decode step would. Two spans per request, medians in µs:

- ``before backend``: from the ASGI call to the backend's ``generate`` starting, the point at
  which ``TritonGrpcBackend`` builds and writes the gRPC request (auth, limits, admission,
  validation, translation and the backend's guards);
- ``first chunk out``: from the backend's first chunk to the first body bytes handed to the
  server (the guards, the reply assembly, SSE framing, the middleware's send wrappers).

``--variants`` runs other apps as well: ``no-gateway`` (without auth, limits and usage
records) or the name of one middleware class to take out (``AdmissionMiddleware``), so a
part's cost shows as the difference from ``full``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Message

from api.app import create_app
from api.backend.types import GenerationChunk, GenerationRequest
from benchmarks import machine
from benchmarks.asgi_bench import bench_settings, one_request, run_as_served
from benchmarks.ceiling import chat_body as ceiling_chat_body
from benchmarks.inprocess import ZeroCostBackend, without_gateway, without_named
from benchmarks.prompts import WORDS

# About one decode step of tiny-chat (6.6 MB of weights), four times one core's L2 here.
DEFAULT_EVICT_MIB = 8
SPANS = ("before backend", "first chunk out")
FULL, NO_GATEWAY = "full", "no-gateway"


@dataclass
class Stamps:
    """perf_counter times of one request's milestones (0.0: not reached)."""

    called: float = 0.0
    backend: float = 0.0
    first_chunk: float = 0.0
    first_body: float = 0.0

    def spans_us(self) -> tuple[float, float]:
        return (
            (self.backend - self.called) * 1e6,
            (self.first_body - self.first_chunk) * 1e6,
        )


class StampingBackend(ZeroCostBackend):
    """The zero-cost backend, stamping when a generation starts and yields its first chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps = Stamps()

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.stamps.backend = time.perf_counter()
        first = True
        async for chunk in super().generate(request):
            if first:
                self.stamps.first_chunk = time.perf_counter()
                first = False
            yield chunk


@dataclass(frozen=True)
class SpanResult:
    variant: str
    span: str
    requests: int
    warm_us: float
    cold_us: float

    @property
    def cold_over_warm(self) -> float:
        return self.cold_us / self.warm_us


def chat_body(words: int, max_tokens: int) -> bytes:
    """A streamed chat request with a user message of ``words`` plain words."""
    text = " ".join(WORDS[index % len(WORDS)] for index in range(words))
    return orjson.dumps(ceiling_chat_body(max_tokens, stream=True, content=text))


class Evictor:
    """Writes over a buffer bigger than the caches it is meant to empty."""

    def __init__(self, mib: int) -> None:
        self._buffer = np.zeros(mib * 1024 * 1024 // 8, dtype=np.int64)

    def evict(self) -> None:
        np.add(self._buffer, 1, out=self._buffer)


async def stamped_request(app: Starlette, body: bytes, stamps: Stamps) -> None:
    """One request through the app, stamping its ASGI call and first body bytes."""

    def on_body(message: Message) -> None:
        if message.get("body") and not stamps.first_body:
            stamps.first_body = time.perf_counter()

    stamps.called = time.perf_counter()
    await one_request(app, body, on_body)


async def measure(
    app: Starlette, backend: StampingBackend, body: bytes, requests: int, evictor: Evictor
) -> dict[bool, list[tuple[float, float]]]:
    """Spans of ``requests`` requests, alternately cold (True) and warm (False)."""
    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for index in range(requests + 20):
        cold = index % 2 == 0
        if cold:
            evictor.evict()
        backend.stamps = Stamps()
        await stamped_request(app, body, backend.stamps)
        if index >= 20:  # the first requests fill the app's caches (key, plans, templates)
            samples[cold].append(backend.stamps.spans_us())
    return samples


def summarize(variant: str, samples: dict[bool, list[tuple[float, float]]]) -> list[SpanResult]:
    """One row per span: the median of the warm and of the cold requests."""
    rows = []
    for position, span in enumerate(SPANS):
        warm = statistics.median(sample[position] for sample in samples[False])
        cold = statistics.median(sample[position] for sample in samples[True])
        count = len(samples[False]) + len(samples[True])
        rows.append(SpanResult(variant, span, count, round(warm, 1), round(cold, 1)))
    return rows


@contextlib.asynccontextmanager
async def served(backend: StampingBackend, folder: Path, variant: str) -> AsyncIterator[Starlette]:
    """The ``variant`` of the app over ``backend``, started (storage in ``folder``)."""
    app = create_app(bench_settings(folder), lambda _: backend)
    app.user_middleware = middleware_of(variant, app.user_middleware)
    async with app.router.lifespan_context(app):
        yield app


def middleware_of(variant: str, stack: list[Middleware]) -> list[Middleware]:
    """``full``: as deployed; ``no-gateway``: without auth, limits and usage records; any other
    name: without the middleware of that class."""
    if variant == FULL:
        return stack
    if variant == NO_GATEWAY:
        return without_gateway(stack)
    kept = without_named(stack, {variant})
    if len(kept) == len(stack):
        raise ValueError(f"no middleware named {variant!r} in the app")
    return kept


async def run(
    variants: Sequence[str], requests: int, evict_mib: int, words: int = 100
) -> list[SpanResult]:
    body = chat_body(words, max_tokens=2)
    evictor = Evictor(evict_mib)
    results: list[SpanResult] = []
    for variant in variants:
        backend = StampingBackend()
        with tempfile.TemporaryDirectory() as folder:
            async with served(backend, Path(folder), variant) as app:
                samples = await measure(app, backend, body, requests, evictor)
        results += summarize(variant, samples)
    return results


def label(variant: str) -> str:
    return variant if variant in (FULL, NO_GATEWAY) else f"without {variant}"


def table(results: Sequence[SpanResult]) -> str:
    lines = [
        f"{'app':<38} {'span':<16} {'warm µs':>8} {'cold µs':>8} {'cold/warm':>9}",
    ]
    for row in results:
        lines.append(
            f"{label(row.variant):<38} {row.span:<16} {row.warm_us:>8.0f} "
            f"{row.cold_us:>8.0f} {row.cold_over_warm:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=600, help="half of them cold")
    parser.add_argument("--evict-mib", type=int, default=DEFAULT_EVICT_MIB)
    parser.add_argument(
        "--variants",
        default=FULL,
        help=f"comma-separated: {FULL}, {NO_GATEWAY}, or a middleware class name to take out",
    )
    parser.add_argument("--json", type=Path, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    run_as_served()
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    results = asyncio.run(run(variants, args.requests, args.evict_mib))
    sys.stdout.write(f"cold: {args.evict_mib} MiB written over before the request\n")
    sys.stdout.write(table(results) + "\n")
    if args.json:
        rows = [asdict(row) | {"cold_over_warm": round(row.cold_over_warm, 2)} for row in results]
        report = {"machine": machine.describe(), "evict_mib": args.evict_mib, "rows": rows}
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
