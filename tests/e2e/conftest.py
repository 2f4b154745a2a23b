"""Starts the real stack once per session: tritonserver (via the launcher) and the API.

Both run as subprocesses exactly as ``scripts/start.sh`` runs them, on free ports, so these
tests see what a user sees. Nothing here fakes Triton.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Stack:
    api_url: str
    triton_grpc: str
    triton_http: str
    api_key: str = "unused"
    # Triton's Prometheus endpoint, e.g. http://127.0.0.1:8002/metrics.
    triton_metrics: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ok(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("logs")
    grpc_port, http_port, metrics_port, api_port = (free_port() for _ in range(4))
    api_key, gateway_dir = "sk-e2e-" + secrets.token_urlsafe(32), tmp_path_factory.mktemp("gw")
    env = {
        **os.environ,
        "TRITON_GRPC_PORT": str(grpc_port),
        "TRITON_HTTP_PORT": str(http_port),
        "TRITON_METRICS_PORT": str(metrics_port),
        "TRITON_RENDERED_DIR": str(tmp_path_factory.mktemp("model_repository")),
        # A busy 2-core CI machine must never see the shared stack restarted under its tests
        # (tests/e2e/test_model_restart.py covers the launcher's model check).
        "TRITON_MODEL_CHECK_INTERVAL_S": "0",
        "API_PORT": str(api_port),
        "API_TRITON__URL": f"127.0.0.1:{grpc_port}",
        # The API needs a key (issue #5): a fresh admin key and database for this session.
        "API_AUTH__BOOTSTRAP_KEY": api_key,
        "API_DATABASE__URL": f"sqlite+aiosqlite:///{gateway_dir / 'api.db'}",
        "API_USAGE__JOURNAL_DIR": str(gateway_dir / "usage-journal"),
    }
    triton = start([sys.executable, "-m", "launcher"], env, logs / "triton.log")
    api = None
    try:
        wait_until_ok(f"http://127.0.0.1:{http_port}/v2/health/ready", triton, logs / "triton.log")
        api = start([sys.executable, "-m", "api", "serve"], env, logs / "api.log")
        wait_until_ok(f"http://127.0.0.1:{api_port}/health/ready", api, logs / "api.log")
        yield Stack(
            api_url=f"http://127.0.0.1:{api_port}",
            triton_grpc=f"127.0.0.1:{grpc_port}",
            triton_http=f"http://127.0.0.1:{http_port}",
            api_key=api_key,
            triton_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        if api is not None:
            stop(api)
        stop(triton)
