"""Embeddings: throughput through the API, and the cache's hit latency against a miss.

Three views, all on the real embedding model in Triton:
- the cache itself, in process: ``EmbeddingService.embed`` for new texts (miss: a Triton call)
  and for the same texts again (hit: a cache lookup);
- through HTTP, one connection (latency) and eight (throughput), with every input new (misses,
  wrk appends a counter) or always the same input (hits);
- Triton directly with perf_analyzer (gRPC, one text per request), for the miss path's ceiling.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from aiocache import SimpleMemoryCache

from api.backend.triton_grpc import TritonGrpcBackend
from api.embedding_service import EmbeddingService
from api.settings import ModelKind, ServedModel, TritonSettings
from benchmarks import wrk
from benchmarks.stack import Stack
from benchmarks.tools import BenchTools

EMBEDDING_MODEL = "all-minilm-l6-v2"
TRITON_MODEL = "embedding"


@dataclass(frozen=True)
class CacheLatency:
    samples: int
    miss_p50_ms: float
    miss_p99_ms: float
    hit_p50_ms: float
    hit_p99_ms: float

    @property
    def speedup(self) -> float:
        return self.miss_p50_ms / self.hit_p50_ms if self.hit_p50_ms else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "speedup_p50": round(self.speedup, 1)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


async def cache_latency(triton_grpc: str, samples: int) -> CacheLatency:
    """Time ``EmbeddingService.embed`` for ``samples`` new texts, then for the same again."""
    backend = TritonGrpcBackend(TritonSettings(url=triton_grpc))
    service = EmbeddingService(backend, SimpleMemoryCache(), batch_size=64, ttl_s=3600)
    model = ServedModel(id=EMBEDDING_MODEL, kind=ModelKind.EMBEDDING, triton_model=TRITON_MODEL)
    nonce = secrets.token_hex(4)
    texts = [f"benchmark sentence {nonce} number {i} about caching" for i in range(samples)]
    try:
        await service.embed(model, [f"warm-up {nonce}"], "warm-up")
        misses = [await _timed(service, model, text) for text in texts]
        hits = [await _timed(service, model, text) for text in texts]
    finally:
        await service.close()
        await backend.close()
    return CacheLatency(
        samples=samples,
        miss_p50_ms=round(statistics.median(misses), 4),
        miss_p99_ms=round(percentile(misses, 0.99), 4),
        hit_p50_ms=round(statistics.median(hits), 4),
        hit_p99_ms=round(percentile(hits, 0.99), 4),
    )


async def _timed(service: EmbeddingService, model: ServedModel, text: str) -> float:
    started = time.perf_counter()
    result = await service.embed(model, [text], "bench")
    elapsed = (time.perf_counter() - started) * 1000
    assert result.vectors.shape[0] == 1
    return elapsed


def http_runs(
    tools: BenchTools, stack: Stack, seconds: float, workdir: Path
) -> dict[str, dict[str, Any]]:
    """wrk against /v1/embeddings: {miss,hit} x {1 connection, 8 connections}."""
    url = f"{stack.api_url}/v1/embeddings"
    results: dict[str, dict[str, Any]] = {}
    for kind in ("miss", "hit"):
        body = {"model": EMBEDDING_MODEL, "input": f"an embedding benchmark input {kind}"}
        if kind == "miss":
            body["input"] += f" {secrets.token_hex(4)}"
        script = wrk.lua_script(body, stack.auth_header, "input" if kind == "miss" else None)
        for connections in (1, 8):
            result = wrk.run(tools.wrk, url, script, connections, seconds, workdir)
            results[f"{kind}_c{connections}"] = result.to_json()
    return results


def direct_throughput(tools: BenchTools, stack: Stack, seconds: float, workdir: Path) -> float:
    """perf_analyzer on the embedding model over gRPC (8 in flight): inferences per second."""
    data = workdir / "embedding-input.json"
    workdir.mkdir(parents=True, exist_ok=True)
    data.write_bytes(orjson.dumps({"data": [{"INPUT_TEXT": ["an embedding benchmark input"]}]}))
    argv = [
        "perf_analyzer", "-m", TRITON_MODEL, "-i", "grpc", "-u", stack.triton_grpc,
        "--concurrency-range", "8", "--input-data", str(data),
        # Three fixed windows, averaged: on a shared 2-core machine stability never comes.
        "--measurement-interval", str(int(seconds * 1000)), "--stability-percentage", "999",
        "--max-trials", "3",
    ]  # fmt: skip
    done = subprocess.run(
        argv, env=tools.env(), capture_output=True, text=True, timeout=seconds * 6 + 60
    )
    return parse_perf_analyzer_throughput(done.stdout + done.stderr)


def parse_perf_analyzer_throughput(output: str) -> float:
    """The last ``throughput: X infer/sec`` perf_analyzer printed (NaN if none)."""
    found = re.findall(r"throughput:\s*([\d.]+)\s*infer/sec", output, flags=re.IGNORECASE)
    return float(found[-1]) if found else float("nan")


def run_embeddings(
    tools: BenchTools, stack: Stack, seconds: float, samples: int, workdir: Path
) -> dict[str, Any]:
    latency = asyncio.run(cache_latency(stack.triton_grpc, samples))
    return {
        "cache": latency.to_json(),
        "http": http_runs(tools, stack, seconds, workdir),
        "direct_infer_per_s": direct_throughput(tools, stack, seconds, workdir),
    }
