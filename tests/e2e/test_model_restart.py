"""The launcher restarts a Triton whose model stopped answering (real processes).

A killed Python-backend stub leaves tritonserver alive and its readiness green; the launcher's
model check (launcher/probe.py, every TRITON_MODEL_CHECK_INTERVAL_S) sees the model not
answering, restarts the server with its stubs, and the API serves again within 5 s of the new
server being ready.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Api, Triton, wait_for
from tests.e2e.test_model_faults import restarted, serves, stubs

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CHECK_EVERY_S, CHECK_TIMEOUT_S, CHECK_FAILURES = 2, 3, 2


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-restart-logs")


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    with Triton(
        logs,
        tmp_path_factory.mktemp("model-restart-repository"),
        TRITON_MODEL_CHECK_INTERVAL_S=str(CHECK_EVERY_S),
        TRITON_MODEL_CHECK_TIMEOUT_S=str(CHECK_TIMEOUT_S),
        TRITON_MODEL_CHECK_FAILURES=str(CHECK_FAILURES),
        TRITON_RESTART_BACKOFF_S="0.5",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api(triton: Triton, logs: Path) -> Iterator[Api]:
    with Api(
        logs,
        "model-restart",
        triton.grpc_url,
        API_RESILIENCE__PROBE_INTERVAL_S="2",
        API_RESILIENCE__PROBE_TIMEOUT_S="3",
    ) as server:
        yield server


def test_a_killed_llm_stub_has_the_launcher_restart_triton(triton: Triton, api: Api) -> None:
    assert serves(api)
    old_server = triton.server_pid()
    (stub,) = [p for p in stubs(triton) if "/tensorrt_llm/" in " ".join(p.args)]
    killed_at = time.monotonic()
    os.kill(stub.pid, signal.SIGKILL)

    wait_for(lambda: restarted(triton, old_server), timeout_s=240, poll_s=0.1)
    ready_at = time.monotonic()
    serving_s = wait_for(lambda: serves(api), timeout_s=60, poll_s=0.1)
    logger.info(
        "llm stub killed: Triton restarted by the launcher and ready after %.1f s; "
        "the API served %.2f s later",
        ready_at - killed_at,
        serving_s,
    )
    assert serving_s < 5
    remaining = stubs(triton)
    assert stub.pid not in {p.pid for p in remaining}
    new_server = triton.server_pid()
    assert remaining and all(p.ppid == new_server for p in remaining)
