"""The system under test: tritonserver with the real or the zero-cost engine, and the API.

Triton is rendered and started through the launcher's own building blocks; the API runs as
``python -m api serve`` exactly as deployed (auth, limits, usage records, access log), with a
throwaway key and limits high enough never to refuse the benchmark's traffic.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from api import GRPC_EXPERIMENTS
from benchmarks.procs import free_port, running, wait_ok
from launcher.repository import render_repository, render_root
from launcher.server import ServerOptions, TritonServer
from launcher.settings import PROJECT_ROOT, LauncherSettings, explicit_settings

logger = logging.getLogger(__name__)

ZERO_COST_MODEL = PROJECT_ROOT / "benchmarks" / "model_repository" / "zero_cost"
# Limits so high that the limiter does all its work and never refuses a benchmark request.
BENCH_TIER = {
    "requests_per_minute": 1_000_000_000,
    "tokens_per_minute": 1_000_000_000_000,
    "max_concurrent": 1_000_000,
    "tokens_per_day": 1_000_000_000_000,
}


TORCH_THREADS = 1


class Engine(enum.StrEnum):
    """Which ``tensorrt_llm`` the ensemble runs: the CPU twin, or one that emits for free."""

    CPU = "cpu"
    ZERO = "zero"


@dataclass(frozen=True)
class Stack:
    api_url: str
    triton_grpc: str
    triton_http: str
    api_key: str
    api_pid: int

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def render_zero_cost_root(settings: LauncherSettings, destination: Path) -> Path:
    """The CPU twin's root (its config.pbtxt: the same contract) with the zero-cost model.py."""
    root = render_root(
        settings.repository_dir / settings.llm_root, destination, settings.template_values()
    )
    model = Path("tensorrt_llm") / "1" / "model.py"
    shutil.copy2(ZERO_COST_MODEL / model, root / model)
    return root


def build_triton(engine: Engine, workdir: Path) -> TritonServer:
    settings = explicit_settings(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        rendered_dir=workdir / "model_repository",
    )
    values = settings.template_values()
    names = settings.roots if engine is Engine.CPU else ("common",)
    roots = render_repository(settings.repository_dir, settings.rendered_dir, names, values)
    if engine is Engine.ZERO:
        roots.append(render_zero_cost_root(settings, settings.rendered_dir / "zero_cost"))
    options = ServerOptions(
        repositories=roots,
        grpc_port=settings.grpc_port,
        http_port=settings.http_port,
        metrics_port=settings.metrics_port,
        exit_timeout_s=settings.exit_timeout_s,
        working_dir=PROJECT_ROOT,
    )
    return TritonServer(options, settings.cache_dir, base_env=triton_environment())


def triton_environment(torch_threads: int = TORCH_THREADS) -> dict[str, str]:
    """The models' processes use one thread each for torch: with the default (one per core)
    every other process that wakes up (the API, the client, Triton's other stubs) stalls the
    engine's spinning OpenMP threads, and the API path, one more process per token, paid for
    it several times over (see benchmarks/README.md)."""
    threads = str(torch_threads)
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def api_environment(port: int, triton_grpc: str, key: str, workdir: Path) -> dict[str, str]:
    """The API's settings as deployed, on private storage, with limits that never refuse."""
    return {
        **os.environ,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_TRITON__URL": triton_grpc,
        "API_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'api.db'}",
        "API_USAGE__JOURNAL_DIR": str(workdir / "usage-journal"),
        "API_AUTH__BOOTSTRAP_KEY": key,
        "API_AUTH__BOOTSTRAP_TIER": "bench",
        "API_LIMITS__TIERS": orjson.dumps({"bench": BENCH_TIER}).decode(),
        "API_LIMITS__DEFAULT_TIER": "bench",
        "API_LIMITS__IP_REQUESTS_PER_MINUTE": str(1_000_000_000),
        # Admission control on: but wide enough that, like the direct path, requests queue in
        # Triton rather than being refused (the default 64 in flight, 10 s queue wait would
        # turn concurrency 128 on a CPU model into 503s).
        "API_RESILIENCE__MAX_IN_FLIGHT": "1024",
        "API_RESILIENCE__QUEUE_TIMEOUT_S": "600",
    }


@contextlib.contextmanager
def api_process(triton_grpc: str, workdir: Path) -> Iterator[tuple[str, str, int]]:
    """``python -m api serve`` against ``triton_grpc``; yields (url, key, pid)."""
    port, key = free_port(), f"sk-bench-{secrets.token_hex(16)}"
    env = api_environment(port, triton_grpc, key, workdir)
    log = workdir / "api.log"
    argv = [sys.executable, "-m", "api", "serve"]
    with running(argv, env, log, PROJECT_ROOT) as process:
        wait_ok(f"http://127.0.0.1:{port}/health/ready", process, log, timeout_s=120)
        yield f"http://127.0.0.1:{port}", key, process.pid


@contextlib.contextmanager
def floor_process(triton_grpc: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """``benchmarks.floor_proxy`` against ``triton_grpc``; yields (url, pid)."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.floor_proxy", "--port", str(port)]
    argv += ["--triton", triton_grpc]
    log = workdir / "floor.log"
    # gRPC's client as the API runs it: set before the proxy's first import of grpc.
    env = {"GRPC_EXPERIMENTS": GRPC_EXPERIMENTS, **os.environ}
    with running(argv, env, log, PROJECT_ROOT) as process:
        wait_ok(f"http://127.0.0.1:{port}/health/ready", process, log, timeout_s=60)
        yield f"http://127.0.0.1:{port}", process.pid


@contextlib.contextmanager
def stack(engine: Engine, workdir: Path, ready_timeout_s: float = 300) -> Iterator[Stack]:
    """Triton with ``engine`` and the API in front of it, both stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    with build_triton(engine, workdir) as triton:
        triton.wait_ready(ready_timeout_s)
        logger.info("Triton (%s engine) ready on gRPC %s", engine.value, triton.grpc_url)
        with api_process(triton.grpc_url, workdir) as (url, key, pid):
            yield Stack(
                api_url=url,
                triton_grpc=triton.grpc_url,
                triton_http=triton.http_url,
                api_key=key,
                api_pid=pid,
            )
