"""Processes the fault and load tests start, break and measure: Triton (through the launcher)
and API servers, each on its own free ports, plus what they read from /proc and /metrics.

Unlike the session ``stack`` these are owned by one test module, which may kill, pause,
restart or shut them down.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx

from api.settings import default_models
from tests.e2e.conftest import free_port, start, stop, wait_until_ok

# Long enough to kill, disconnect or shut down in the middle of: ~1000 tokens, never EOS.
LONG_REPLY = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "Count from 1 to 10"}],
    "max_tokens": 990,
    "min_tokens": 990,
    "temperature": 0,
}


class Started:
    """``with server:`` starts it and always stops it (fixtures: ``with X(...) as s: yield s``)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Triton(Started):
    """``python -m launcher`` on fixed ports, so that a restart comes back on the same ones."""

    def __init__(self, logs: Path, rendered_dir: Path, **settings: str) -> None:
        self.logs = logs
        self.grpc_port, self.http_port, self.metrics_port = (free_port() for _ in range(3))
        self.env = {
            **os.environ,
            "TRITON_GRPC_PORT": str(self.grpc_port),
            "TRITON_HTTP_PORT": str(self.http_port),
            "TRITON_METRICS_PORT": str(self.metrics_port),
            "TRITON_RENDERED_DIR": str(rendered_dir),
            # Lets a test unload and load one model through the repository API.
            "TRITON_MODEL_CONTROL_MODE": "explicit",
            # The fault tests kill stubs on purpose: only tests that ask for it (settings)
            # have the launcher restart a server whose models stop answering.
            "TRITON_MODEL_CHECK_INTERVAL_S": "0",
            **settings,
        }
        self.launcher: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.starts += 1
        log = self.logs / f"triton-{self.starts}.log"
        self.launcher = start([sys.executable, "-m", "launcher"], self.env, log)
        wait_until_ok(f"{self.http_url}/v2/health/ready", self.launcher, log)

    def server_pid(self) -> int:
        """The tritonserver process (a child of the launcher)."""
        assert self.launcher is not None
        for child in _children(self.launcher.pid):
            if "tritonserver" in Path(f"/proc/{child}/cmdline").read_bytes().decode():
                return child
        raise RuntimeError("tritonserver is not running")

    def kill(self) -> None:
        """SIGKILL tritonserver, as a crash would; the launcher then exits on its own (when
        started with TRITON_MAX_RESTARTS=0; else it restarts tritonserver)."""
        assert self.launcher is not None
        os.kill(self.server_pid(), signal.SIGKILL)
        # Generous: unloading the Python models takes seconds on a busy 2-core machine.
        self.launcher.wait(timeout=90)
        self.launcher = None

    def stop(self) -> None:
        """A graceful stop (SIGTERM to the launcher, which stops tritonserver)."""
        if self.launcher is not None:
            stop(self.launcher)
            self.launcher = None

    def signal_server(self, signum: signal.Signals) -> None:
        os.kill(self.server_pid(), signum)

    def repository(self, model: str, action: str) -> None:
        """Unload or load one model (Triton runs with --model-control-mode=explicit)."""
        url = f"{self.http_url}/v2/repository/models/{model}/{action}"
        httpx.post(url, timeout=120).raise_for_status()

    def generated_tokens(self) -> int:
        """Tokens the engine produced: postprocessing runs once per streamed token."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        found = re.search(r'nv_inference_count\{model="postprocessing",version="1"\} (\S+)', text)
        return int(float(found.group(1))) if found else 0

    def settled_tokens(self, quiet_s: float = 1.5, timeout_s: float = 30) -> int:
        """``generated_tokens`` once it has stopped changing for ``quiet_s``.

        Postprocessing can lag behind the engine on a busy machine, so one reading right
        after a cancellation may still be climbing.
        """
        deadline = time.monotonic() + timeout_s
        last = self.generated_tokens()
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = self.generated_tokens()
            if now == last:
                return now
            last = now
        raise AssertionError(f"the engine was still generating after {timeout_s} s")


class Api(Started):
    """``python -m api serve`` against a given Triton, with its own key and database."""

    def __init__(self, logs: Path, name: str, triton_grpc: str, **settings: str) -> None:
        self.port = free_port()
        self.key = "sk-e2e-" + secrets.token_urlsafe(32)
        self.log = logs / f"api-{name}.log"
        data = logs / f"gateway-{name}"
        self.env = {
            **os.environ,
            "API_PORT": str(self.port),
            "API_TRITON__URL": triton_grpc,
            "API_AUTH__BOOTSTRAP_KEY": self.key,
            "API_DATABASE__URL": f"sqlite+aiosqlite:///{data / 'api.db'}",
            "API_USAGE__JOURNAL_DIR": str(data / "usage-journal"),
            **settings,
        }
        data.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.process = start([sys.executable, "-m", "api", "serve"], self.env, self.log)
        wait_until_ok(f"{self.url}/health/live", self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert found is not None
        return int(found.group(1)) * 1024

    def post(self, path: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=timeout)


def models_json(**timeouts: float) -> str:
    """The default models as ``API_MODELS``, with per-kind request timeouts."""
    models = []
    for model in default_models():
        timeout = timeouts.get(model.kind.value)
        data = model.model_dump(mode="json")
        models.append({**data, "request_timeout_s": timeout} if timeout else data)
    return json.dumps(models)


def sse_events(lines: Iterator[str]) -> Iterator[str]:
    """The payloads of the ``data:`` lines of an SSE response."""
    for line in lines:
        if line.startswith("data: "):
            yield line.removeprefix("data: ")


def content_of(event: str) -> str:
    """The text delta of a chat chunk ('' for other events)."""
    if event == "[DONE]":
        return ""
    choices = json.loads(event).get("choices") or [{}]
    return str(choices[0].get("delta", {}).get("content") or "")


def wait_for(condition: Any, timeout_s: float, poll_s: float = 0.2) -> float:
    """Seconds until ``condition()`` is true; fails after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not true within {timeout_s} s: {condition}")
        time.sleep(poll_s)
    return time.monotonic() - started


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found
