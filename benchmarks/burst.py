"""Bursts: N streamed requests sent at the same instant; the time to first token of the last.

The question is whether a gateway serialises a burst behind its own work: if it handled each
request's admission, translation and first chunk one after another, the last request's first
token would slide by N x (its per-request time) against the direct path.

Every path gets N connections (HTTP keep-alive) or N gRPC streams on one channel, opened and
warmed with one request each before the bursts, so a burst measures the gateway and not
connection set-up. Each burst: every request waits on one event, which is set once all N are
ready; each records its own time from that instant to its first text. The burst's figure is
the largest (the last request served); a path's figure is the median over ``rounds`` bursts,
paths interleaved per round so load that drifts hits them alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import httpx
import orjson
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.tensors import add_input

# One request of a burst: awaits the start event, returns seconds to its first text.
Shot = Callable[[asyncio.Event], Awaitable[float]]


@dataclass(frozen=True)
class BurstResult:
    path: str
    size: int
    last_ttft_ms: list[float]  # per burst: the slowest request's time to first text
    median_ttft_ms: list[float]  # per burst: the median request's

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "size": self.size,
            "bursts": len(self.last_ttft_ms),
            "last_ttft_p50_ms": median(self.last_ttft_ms),
            "median_ttft_p50_ms": median(self.median_ttft_ms),
            "last_ttft_ms": [round(value, 2) for value in self.last_ttft_ms],
        }


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def summarise(ttfts_s: Sequence[float]) -> tuple[float, float]:
    """(slowest, median) of one burst's times to first text, in ms."""
    if not ttfts_s:
        raise ValueError("empty burst")
    return max(ttfts_s) * 1e3, statistics.median(ttfts_s) * 1e3


async def fire(shots: Sequence[Shot]) -> tuple[float, float]:
    """Run one burst: all shots released by the same event."""
    start = asyncio.Event()
    tasks = [asyncio.ensure_future(shot(start)) for shot in shots]
    await asyncio.sleep(0.05)  # every task is parked on the event
    start.set()
    return summarise(await asyncio.gather(*tasks))


def chat_shot(client: httpx.AsyncClient, url: str, headers: Mapping[str, str], body: bytes) -> Shot:
    async def shot(start: asyncio.Event) -> float:
        await start.wait()
        began = time.perf_counter()
        first = None
        async with client.stream("POST", url, content=body, headers=dict(headers)) as reply:
            if reply.status_code != 200:
                raise RuntimeError(f"{url}: {reply.status_code} {await reply.aread()!r}")
            async for line in reply.aiter_lines():
                if first is None and has_text(line):
                    first = time.perf_counter() - began
        if first is None:
            raise RuntimeError(f"{url}: no text in the stream")
        return first

    return shot


def has_text(line: str) -> bool:
    """An SSE line that carries generated text (not the role chunk, not ``[DONE]``)."""
    if not line.startswith("data:"):
        return False
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return False
    chunk = orjson.loads(data)
    return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or [])


def chat_body(model: str, prompt: str, max_tokens: int) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "min_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
        }
    )


def ensemble_request(
    prompt: str, max_tokens: int, request_id: str
) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="ensemble", id=request_id)
    add_input(request, "text_input", "BYTES", [prompt])
    add_input(request, "max_tokens", "INT32", [max_tokens])
    add_input(request, "min_tokens", "INT32", [max_tokens])
    add_input(request, "temperature", "FP32", [0.0])
    add_input(request, "stream", "BOOL", [True])
    request.outputs.add().name = "text_output"
    return request


def grpc_shot(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, request: service_pb2.ModelInferRequest
) -> Shot:
    async def shot(start: asyncio.Event) -> float:
        await start.wait()
        began = time.perf_counter()
        first = None
        call = stub.ModelStreamInfer(iter([request]))
        async for response in call:
            if response.error_message:
                raise RuntimeError(response.error_message)
            infer = response.infer_response
            final = infer.parameters.get("triton_final_response")
            if first is None and _text_length(infer) > 0:
                first = time.perf_counter() - began
            if final is not None and final.bool_param:
                break
        call.cancel()
        if first is None:
            raise RuntimeError("direct: no text in the stream")
        return first

    return shot


def _text_length(infer: service_pb2.ModelInferResponse) -> int:
    for index, output in enumerate(infer.outputs):
        if output.name == "text_output" and index < len(infer.raw_output_contents):
            return max(0, len(infer.raw_output_contents[index]) - 4)
    return 0


async def run_bursts(
    sizes: Sequence[int],
    rounds: int,
    prompts: Mapping[str, Sequence[str]],
    http_paths: Mapping[str, tuple[str, Mapping[str, str], str]],
    triton_grpc: str | None,
    max_tokens: int = 16,
) -> list[BurstResult]:
    """``http_paths``: name -> (chat URL, headers, model); ``prompts``: "plain" for chat
    endpoints that apply the template themselves, "templated" for the direct path and for
    gateways that send the text as it is (LiteLLM's triton provider)."""
    largest = max(sizes)
    results: list[BurstResult] = []
    limits = httpx.Limits(max_connections=largest, max_keepalive_connections=largest)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        channel = grpc.aio.insecure_channel(triton_grpc) if triton_grpc else None
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel) if channel else None

        def shots(path: str, size: int, index: int) -> list[Shot]:
            if path == "direct":
                assert stub is not None
                texts = prompts["templated"]
                return [
                    grpc_shot(
                        stub,
                        ensemble_request(
                            texts[(index + i) % len(texts)], max_tokens, f"b{index}-{i}"
                        ),
                    )
                    for i in range(size)
                ]
            url, headers, model = http_paths[path]
            texts = prompts["templated" if path == "litellm" else "plain"]
            return [
                chat_shot(
                    client,
                    url,
                    headers,
                    chat_body(model, texts[(index + i) % len(texts)], max_tokens),
                )
                for i in range(size)
            ]

        paths = [*(["direct"] if stub else []), *http_paths]
        # Warm-up: every connection and stream opened once.
        for path in paths:
            await fire(shots(path, largest, 0))
        collected: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for round_index in range(rounds):
            order = paths if round_index % 2 == 0 else list(reversed(paths))
            for size in sizes:
                for path in order:
                    figures = await fire(shots(path, size, round_index * size))
                    collected.setdefault((path, size), []).append(figures)
        if channel is not None:
            await channel.close()
    for (path, size), bursts in collected.items():
        results.append(BurstResult(path, size, [b[0] for b in bursts], [b[1] for b in bursts]))
    return results
