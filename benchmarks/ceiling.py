"""The API's own ceiling: the real app over the in-process zero-cost backend.

For each worker count, uvicorn serves ``benchmarks.inprocess:build_app`` and wrk drives
streamed chat completions (chunks per second) and non-streaming ones (requests per second),
with the gateway (auth, limits, usage records) as deployed and without it. The server's and
the client's CPU time are measured so that "per worker" figures can be judged on 2 cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import wrk
from benchmarks.procs import cpu_seconds, descendants, free_port, http_status, running
from benchmarks.stack import api_environment
from launcher.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

CHAT_MODEL = "tiny-chat"


@dataclass(frozen=True)
class CeilingPlan:
    workers: tuple[int, ...] = (1, 2)
    gateway: tuple[bool, ...] = (True, False)
    stream_tokens: int = 64
    json_tokens: int = 16
    connections: int = 32
    warmup_s: float = 2.0
    duration_s: float = 8.0
    # Measured runs per mode after one warm-up: single 8 s runs gave 1,701 to 2,025 requests/s
    # per worker in three full runs, and 1,791 to 2,244 back to back on one server, so the row
    # is the median run.
    repeats: int = 3


@dataclass(frozen=True)
class CeilingResult:
    mode: str  # "stream" or "json"
    workers: int
    gateway: bool
    tokens_per_request: int
    requests_per_s: float
    chunks_per_s: float
    errors: int
    latency_p50_ms: float
    latency_p99_ms: float
    server_cores: float  # server CPU seconds per wall second
    client_cores: float
    per_worker: float  # chunks/s (stream) or requests/s (json) per worker process
    per_server_core: float  # the same per busy server core
    runs: tuple[float, ...] = ()  # per_worker of every measured run; the row is the median

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def chat_body(tokens: int, stream: bool, content: str = "Say something.") -> dict[str, Any]:
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": tokens,
        "stream": stream,
    }


@contextlib.contextmanager
def serve(workers: int, gateway: bool, workdir: Path) -> Iterator[tuple[str, str, int]]:
    """uvicorn with ``workers`` processes; yields (url, key, master pid) once all are up."""
    port = free_port()
    key = "sk-bench-ceiling-" + str(port)
    env = {
        **api_environment(port, "127.0.0.1:1", key, workdir),
        "BENCH_GATEWAY": str(gateway).lower(),
    }
    argv = [
        sys.executable, "-m", "uvicorn", "benchmarks.inprocess:build_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        # As api.server.serve runs it: the app writes the access log, uvicorn does not.
        "--log-level", "info", "--no-access-log",
    ]  # fmt: skip
    log = workdir / f"uvicorn-{workers}w-{'gw' if gateway else 'nogw'}.log"
    with running(argv, env, log, PROJECT_ROOT) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_workers(process.pid, workers, f"{url}/health/ready", log)
        yield url, key, process.pid


def _wait_workers(master: int, workers: int, ready_url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # With several workers, uvicorn's master process supervises one process per worker.
        processes = workers + 1 if workers > 1 else 1
        if len(descendants(master)) >= processes and http_status(ready_url) == 200:
            time.sleep(1.0)  # let the last worker finish its start-up
            return
        time.sleep(0.25)
    raise RuntimeError(f"uvicorn not ready:\n{log.read_text()[-3000:]}")


def check_stream(url: str, headers: Mapping[str, str], tokens: int) -> int:
    """Content chunks of one streamed reply (must equal ``tokens``)."""
    body = orjson.dumps(chat_body(tokens, stream=True))
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read().decode()
    chunks = 0
    for line in text.splitlines():
        if line.startswith("data: {"):
            choices = orjson.loads(line[6:]).get("choices") or [{}]
            chunks += bool((choices[0].get("delta") or {}).get("content"))
    return chunks


def measure(
    url: str, master: int, script: str, plan: CeilingPlan, wrk_path: Path, workdir: Path
) -> list[tuple[wrk.WrkResult, float]]:
    """Warm up, then ``plan.repeats`` measured wrk runs, each with the server's busy cores."""
    target = f"{url}/v1/chat/completions"
    wrk.run(wrk_path, target, script, plan.connections, plan.warmup_s, workdir)
    pids = descendants(master)
    runs = []
    for _ in range(max(1, plan.repeats)):
        cpu_before, started = cpu_seconds(pids), time.monotonic()
        result = wrk.run(wrk_path, target, script, plan.connections, plan.duration_s, workdir)
        runs.append((result, (cpu_seconds(pids) - cpu_before) / (time.monotonic() - started)))
    return runs


def run_ceiling(plan: CeilingPlan, wrk_path: Path, workdir: Path) -> list[CeilingResult]:
    results: list[CeilingResult] = []
    for workers in plan.workers:
        for gateway in plan.gateway:
            with serve(workers, gateway, workdir) as (url, key, master):
                headers = {"Authorization": f"Bearer {key}"}
                seen = check_stream(url, headers, plan.stream_tokens)
                if seen != plan.stream_tokens:
                    raise RuntimeError(f"expected {plan.stream_tokens} chunks, got {seen}")
                for mode, tokens in (("stream", plan.stream_tokens), ("json", plan.json_tokens)):
                    script = wrk.lua_script(chat_body(tokens, mode == "stream"), headers)
                    runs = measure(url, master, script, plan, wrk_path, workdir)
                    results.append(median_result(mode, workers, gateway, tokens, runs))
                    logger.info("ceiling %s", results[-1])
    return results


def median_result(
    mode: str,
    workers: int,
    gateway: bool,
    tokens: int,
    runs: Sequence[tuple[wrk.WrkResult, float]],
) -> CeilingResult:
    """The median run's figures (one run's, so they agree with each other), listing every
    run's rate per worker; errors are summed over the runs."""
    results = [_result(mode, workers, gateway, tokens, measured, cores) for measured, cores in runs]
    ranked = sorted(results, key=lambda result: result.per_worker)
    return dataclasses.replace(
        ranked[(len(ranked) - 1) // 2],
        errors=sum(result.errors for result in results),
        runs=tuple(result.per_worker for result in results),
    )


def _result(
    mode: str, workers: int, gateway: bool, tokens: int, measured: wrk.WrkResult, cores: float
) -> CeilingResult:
    chunks = measured.requests_per_s * tokens if mode == "stream" else 0.0
    rate = chunks if mode == "stream" else measured.requests_per_s
    return CeilingResult(
        mode=mode,
        workers=workers,
        gateway=gateway,
        tokens_per_request=tokens,
        requests_per_s=round(measured.requests_per_s, 1),
        chunks_per_s=round(chunks, 1),
        errors=measured.errors,
        latency_p50_ms=round(measured.latency_p50_ms, 2),
        latency_p99_ms=round(measured.latency_p99_ms, 2),
        server_cores=round(cores, 2),
        client_cores=round(measured.client_cpu_s / measured.duration_s, 2),
        per_worker=round(rate / workers, 1),
        per_server_core=round(rate / cores, 1) if cores > 0 else 0.0,
    )
