"""Streamed tokens/s and API CPU per token: the gRPC API (StreamChatComplete) against SSE
(POST /v1/chat/completions, stream=true), through the same API process and Triton.

``python -m benchmarks.grpc_vs_sse [--engine zero|cpu] [--concurrency 8] [--requests 32]``.
The zero-cost engine (default) emits tokens as fast as Triton's Python backend sends them, so
the API's own cost per token shows; the API's CPU is read from /proc/<pid>/stat around each
run. Transports alternate (SSE, gRPC, SSE, gRPC, ...) so that drift hits both alike. The
clients run in this process, on the same cores: compare the two, not against other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import httpx

from api.grpc import llm_service_pb2 as pb
from api.grpc import llm_service_pb2_grpc as pb_grpc
from benchmarks.procs import cpu_seconds, free_port
from benchmarks.stack import Engine, Stack, stack

logger = logging.getLogger(__name__)

PROMPT = "Count from 1 to 10"


@dataclass(frozen=True)
class Run:
    transport: str
    requests: int
    tokens: int
    wall_s: float
    api_cpu_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def api_cpu_us_per_token(self) -> float:
        return self.api_cpu_s / self.tokens * 1e6


async def sse_stream(client: httpx.AsyncClient, max_tokens: int) -> int:
    body = {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"usage":{' in line:
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return int(tokens)


async def grpc_stream(stub: pb_grpc.LLMServiceStub, key: str, max_tokens: int) -> int:
    request = pb.ChatCompletionRequest(
        model="tiny-chat",
        messages=[pb.ChatMessage(role="user", content=PROMPT)],
        max_tokens=max_tokens,
    )
    metadata = (("authorization", f"Bearer {key}"),)
    last = None
    async for chunk in stub.StreamChatComplete(request, metadata=metadata):
        last = chunk
    assert last is not None and last.HasField("usage")
    return int(last.usage.completion_tokens)


async def measure(
    transport: str, one: Callable[[], Awaitable[int]], api_pid: int, requests: int, conc: int
) -> Run:
    gate = asyncio.Semaphore(conc)

    async def limited() -> int:
        async with gate:
            return await one()

    cpu_before, started = cpu_seconds([api_pid]), time.perf_counter()
    tokens = sum(await asyncio.gather(*(limited() for _ in range(requests))))
    wall = time.perf_counter() - started
    return Run(transport, requests, tokens, wall, cpu_seconds([api_pid]) - cpu_before)


async def compare(running: Stack, grpc_port: int, args: argparse.Namespace) -> list[Run]:
    headers = running.auth_header
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with (
        httpx.AsyncClient(
            base_url=running.api_url, headers=headers, timeout=600, limits=limits
        ) as client,
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
    ):
        stub = pb_grpc.LLMServiceStub(channel)  # type: ignore[no-untyped-call]
        transports: dict[str, Callable[[], Awaitable[int]]] = {
            "sse": lambda: sse_stream(client, args.max_tokens),
            "grpc": lambda: grpc_stream(stub, running.api_key, args.max_tokens),
        }
        for one in transports.values():  # warm-up: connections, caches, first compiles
            await asyncio.gather(*(one() for _ in range(args.concurrency)))
        runs = []
        for _ in range(args.rounds):
            for name, one in transports.items():
                run = await measure(name, one, running.api_pid, args.requests, args.concurrency)
                logger.info(
                    "%s: %.0f tokens/s, %.1f µs API CPU per token",
                    name,
                    run.tokens_per_s,
                    run.api_cpu_us_per_token,
                )
                runs.append(run)
        return runs


def summary(runs: Sequence[Run]) -> dict[str, dict[str, float]]:
    """Median over the rounds, per transport."""
    result = {}
    for name in sorted({run.transport for run in runs}):
        mine = [run for run in runs if run.transport == name]
        result[name] = {
            "tokens_per_s": round(statistics.median(r.tokens_per_s for r in mine), 1),
            "api_cpu_us_per_token": round(
                statistics.median(r.api_cpu_us_per_token for r in mine), 1
            ),
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grpc_vs_sse", description=__doc__)
    parser.add_argument("--engine", choices=[e.value for e in Engine], default=Engine.ZERO.value)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--output", type=Path, help="write the runs and summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    grpc_port = free_port()
    # The API process copies this environment (benchmarks.stack.api_environment).
    os.environ["API_GRPC__PORT"] = str(grpc_port)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="grpc-vs-sse-"))
    with stack(Engine(args.engine), workdir) as running:
        runs = asyncio.run(compare(running, grpc_port, args))
    report = {
        "engine": args.engine,
        "concurrency": args.concurrency,
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "summary": summary(runs),
        "runs": [asdict(run) for run in runs],
    }
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    sys.stdout.write(json.dumps(report["summary"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
