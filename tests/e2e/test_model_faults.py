"""A model that dies inside a live Triton, and a Triton that dies: seen, bounded, recovered.

Real processes: Triton through the launcher (which restarts it), the API as ``python -m api
serve`` with a small stream idle bound and a fast active probe. The tests run in order and
share that state: first the ``tensorrt_llm`` stub is killed under 8 streams (Triton's own
readiness stays green), then tritonserver itself, which the launcher starts again.
Measurements are logged (``-o log_cli=true --log-cli-level=INFO`` shows them).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    LONG_REPLY,
    Api,
    Triton,
    content_of,
    models_json,
    sse_events,
    wait_for,
)

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
STREAMS = 8
IDLE_S = 5.0
PROBE_INTERVAL_S, PROBE_TIMEOUT_S = 2.0, 3.0
# Slack for a loaded 2-core machine on top of each configured bound.
SLACK_S = 3.0


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-fault-logs")


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    repository = tmp_path_factory.mktemp("model-fault-repository")
    with Triton(logs, repository, TRITON_RESTART_BACKOFF_S="0.5") as server:
        yield server


@pytest.fixture(scope="module")
def api(triton: Triton, logs: Path) -> Iterator[Api]:
    with Api(
        logs,
        "model-faults",
        triton.grpc_url,
        API_RESILIENCE__STREAM_IDLE_TIMEOUT_S=str(IDLE_S),
        API_RESILIENCE__PROBE_INTERVAL_S=str(PROBE_INTERVAL_S),
        API_RESILIENCE__PROBE_TIMEOUT_S=str(PROBE_TIMEOUT_S),
        # Enough for 8 streams and new requests at once on the CPU twin.
        API_RESILIENCE__QUEUE_TIMEOUT_S="30",
    ) as server:
        yield server


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    args: list[str]


def processes() -> list[Process]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode().split("\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":
            found.append(Process(int(entry.name), int(stat[1]), args))
    return found


def stubs(triton: Triton) -> list[Process]:
    """The Python-backend stubs of this module's Triton (its repository is its own)."""
    repository = str(triton.env["TRITON_RENDERED_DIR"])
    return [
        p
        for p in processes()
        if p.args[0].endswith("triton_python_backend_stub") and repository in " ".join(p.args)
    ]


@dataclass
class Stream:
    """One streamed chat reply read on its own thread."""

    api: Api
    texts: int = 0
    error: dict[str, str] | None = None
    ended_at: float | None = None
    events: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        body = {**LONG_REPLY, "stream": True}
        with (
            httpx.Client(timeout=120, headers=self.api.headers) as client,
            client.stream("POST", f"{self.api.url}{CHAT}", json=body) as response,
        ):
            for event in sse_events(response.iter_lines()):
                self.events.append(event)
                self.texts += bool(content_of(event))
                if event != "[DONE]" and "error" in json.loads(event):
                    self.error = json.loads(event)["error"]
        self.ended_at = time.monotonic()


def test_killing_the_llm_stub_ends_every_stream_and_turns_readiness(
    triton: Triton, api: Api
) -> None:
    streams = [Stream(api) for _ in range(STREAMS)]
    for stream in streams:
        stream.start()
    wait_for(lambda: all(stream.texts >= 2 for stream in streams), timeout_s=120)
    (stub,) = [p for p in stubs(triton) if "/tensorrt_llm/" in " ".join(p.args)]
    assert httpx.get(f"{api.url}/health/ready", timeout=10).status_code == 200
    # The engine is full (8 streams, 8 slots): the probe's token waits, but streaming goes on.
    busy = model_probe(triton)
    assert busy.returncode == 0, busy.stderr
    killed_at = time.monotonic()
    os.kill(stub.pid, signal.SIGKILL)

    unready_s = wait_for(lambda: not_ready(api, "ensemble"), timeout_s=60, poll_s=0.1)
    for stream in streams:
        assert stream.thread is not None
        stream.thread.join(timeout=IDLE_S + SLACK_S + 60)
    ends = sorted(stream.ended_at - killed_at for stream in streams if stream.ended_at)
    logger.info(
        "stub killed under %d streams: error events after %.2f-%.2f s; /health/ready 503 "
        "after %.2f s",
        STREAMS,
        ends[0],
        ends[-1],
        unready_s,
    )
    assert len(ends) == STREAMS
    for stream in streams:
        assert stream.events[-1] == "[DONE]"
        assert stream.error is not None and stream.error["code"] == "timeout", stream.events[-2:]
    assert ends[-1] < IDLE_S + SLACK_S
    assert unready_s < IDLE_S + SLACK_S
    # Triton itself still says ready: only the probe sees the model is dead.
    assert httpx.get(f"{triton.http_url}/v2/health/ready", timeout=5).status_code == 200
    wait_for(lambda: degraded(api).get("ensemble") == "unresponsive", timeout_s=30)
    started = time.monotonic()
    refused = api.post(CHAT, HELLO, timeout=30)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "circuit_open"
    assert time.monotonic() - started < 2  # new requests fail fast instead of hanging
    assert degraded(api).get("embedding") is None  # the other model still serves
    # The chart's liveness probe of the Triton pod fails too, naming the dead model.
    probe = model_probe(triton)
    assert probe.returncode == 1
    assert "ensemble" in probe.stderr and "embedding:" not in probe.stderr


def model_probe(triton: Triton) -> subprocess.CompletedProcess[str]:
    """The Helm chart's Triton liveness probe, as the kubelet runs it."""
    command = [sys.executable, "-m", "launcher.probe", f"--url={triton.grpc_url}"]
    metrics = f"--metrics-url=http://127.0.0.1:{triton.metrics_port}/metrics"
    command += ["--timeout=5", f"--models={models_json()}", metrics]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_killed_tritonserver_is_restarted_and_the_api_serves_within_5_s(
    triton: Triton, api: Api
) -> None:
    old_server = triton.server_pid()
    old_stubs = {p.pid for p in stubs(triton)}
    assert old_stubs and all(p.ppid == old_server for p in stubs(triton))
    killed_at = time.monotonic()
    os.kill(old_server, signal.SIGKILL)

    wait_for(lambda: restarted(triton, old_server), timeout_s=240, poll_s=0.1)
    triton_ready_at = time.monotonic()
    serving_s = wait_for(lambda: serves(api), timeout_s=60, poll_s=0.1)
    new_server = triton.server_pid()
    logger.info(
        "tritonserver killed: restarted and ready after %.1f s; the API served %.2f s later",
        triton_ready_at - killed_at,
        serving_s,
    )
    assert serving_s < 5
    remaining = stubs(triton)
    assert not old_stubs & {p.pid for p in remaining}  # the dead server's stubs were reaped
    assert remaining and all(p.ppid == new_server for p in remaining)
    wait_for(lambda: httpx.get(f"{api.url}/health/ready", timeout=5).status_code == 200, 10)


def degraded(api: Api) -> dict[str, str]:
    found: dict[str, str] = httpx.get(f"{api.url}/health/ready", timeout=10).json()["degraded"]
    return found


def not_ready(api: Api, model: str) -> bool:
    reply = httpx.get(f"{api.url}/health/ready", timeout=10)
    return reply.status_code == 503 and model in reply.json()["degraded"]


def restarted(triton: Triton, old_server: int) -> bool:
    try:
        if triton.server_pid() == old_server:
            return False
        return httpx.get(f"{triton.http_url}/v2/health/ready", timeout=2).status_code == 200
    except (RuntimeError, httpx.TransportError):
        return False


def serves(api: Api) -> bool:
    try:
        return api.post(CHAT, HELLO, timeout=10).status_code == 200
    except httpx.TransportError:
        return False
