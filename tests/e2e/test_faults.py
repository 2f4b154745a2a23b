"""Faults against the real Triton process: the API answers clearly and recovers by itself.

This module owns its own Triton and API (the session stack is never broken). The tests run in
order and share that state: disconnects and shutdowns first, then a hung Triton, one model
unloaded, Triton killed mid-stream, requests while it is down, a restart, a graceful stop.
Measurements are logged (``-o log_cli=true --log-cli-level=INFO`` shows them).
"""

from __future__ import annotations

import json
import logging
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import LONG_REPLY, Api, Triton, content_of, models_json, sse_events, wait_for

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
EMBEDDING_TIMEOUT_S = 3.0
# uvicorn re-raises the signal once it has shut down cleanly, so the status reports SIGTERM.
EXIT_AFTER_SIGTERM = {0, -signal.SIGTERM}
GUARDS = {
    # Three failures open a breaker; the back-off (1-2 s, then up to 4 s) is long enough to
    # observe the open state and short enough to observe the recovery.
    "API_RESILIENCE__BREAKER_FAILURE_THRESHOLD": "3",
    "API_RESILIENCE__BREAKER_OPEN_S": "2",
    "API_RESILIENCE__BREAKER_MAX_OPEN_S": "4",
    "API_MODELS": models_json(chat=60, embedding=EMBEDDING_TIMEOUT_S),
}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    # These tests restart Triton themselves (test_model_faults.py has the launcher do it).
    with Triton(
        logs, tmp_path_factory.mktemp("fault-repository"), TRITON_MAX_RESTARTS="0"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api(triton: Triton, logs: Path) -> Iterator[Api]:
    with Api(logs, "faults", triton.grpc_url, **GUARDS) as server:
        yield server


def embed_body() -> dict[str, object]:
    # A fresh text each time: the embedding cache would otherwise answer without Triton.
    return {"model": "all-minilm-l6-v2", "input": f"fault test {uuid.uuid4()}"}


def error_code(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    return str(error["code"])


def stream_events(api: Api, body: dict[str, object], after: int, action: object) -> list[str]:
    """Stream ``body``; after ``after`` text deltas call ``action()``; return every event."""
    events: list[str] = []
    texts = 0
    with (
        httpx.Client(timeout=60, headers=api.headers) as client,
        client.stream("POST", f"{api.url}{CHAT}", json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200
        for event in sse_events(response.iter_lines()):
            events.append(event)
            if content_of(event):
                texts += 1
                if texts == after:
                    action()  # type: ignore[operator]
    return events


def test_a_client_that_disconnects_mid_stream_stops_the_engine(triton: Triton, api: Api) -> None:
    before = triton.generated_tokens()
    received = 0
    with (
        httpx.Client(timeout=60, headers=api.headers) as client,
        client.stream("POST", f"{api.url}{CHAT}", json={**LONG_REPLY, "stream": True}) as reply,
    ):
        for event in sse_events(reply.iter_lines()):
            received += bool(content_of(event))
            if received == 5:
                break  # leaving the block closes the connection mid-stream
    generated = triton.settled_tokens() - before
    logger.info("disconnect after %d tokens: the engine generated %d in all", received, generated)
    assert generated < LONG_REPLY["max_tokens"] // 2  # type: ignore[operator]


def test_a_client_that_gives_up_on_a_non_streaming_reply_stops_the_engine(
    triton: Triton, api: Api
) -> None:
    before = triton.generated_tokens()
    with pytest.raises(httpx.ReadTimeout):
        api.post(CHAT, LONG_REPLY, timeout=0.5)
    generated = triton.settled_tokens() - before
    logger.info("non-streaming client left after 0.5 s: %d tokens generated", generated)
    assert generated < LONG_REPLY["max_tokens"]  # type: ignore[operator]


def test_shutdown_lets_running_streams_finish(triton: Triton, logs: Path) -> None:
    server = Api(logs, "drain", triton.grpc_url, API_RESILIENCE__DRAIN_TIMEOUT_S="30")
    server.start()
    refused: list[bool] = []

    def terminate() -> None:
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            httpx.get(f"{server.url}/health/live", timeout=2)
            refused.append(False)
        except httpx.ConnectError:
            refused.append(True)

    # Short enough to finish well inside the 30 s drain even on a loaded 2-core machine.
    body = {**LONG_REPLY, "max_tokens": 100, "min_tokens": 100}
    try:
        events = stream_events(server, body, after=3, action=terminate)
        assert server.process is not None
        assert server.process.wait(timeout=30) in EXIT_AFTER_SIGTERM
    finally:
        server.stop()
    assert refused == [True]  # no new connections once shutdown began
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length", events[-3:]
    assert sum(1 for e in events if content_of(e)) > 80


def test_streams_still_running_at_the_drain_timeout_end_with_an_error_event(
    triton: Triton, logs: Path
) -> None:
    server = Api(logs, "drain-timeout", triton.grpc_url, API_RESILIENCE__DRAIN_TIMEOUT_S="1")
    server.start()
    started = time.monotonic()

    def terminate() -> None:
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)

    try:
        events = stream_events(server, LONG_REPLY, after=3, action=terminate)
        assert server.process is not None
        assert server.process.wait(timeout=30) in EXIT_AFTER_SIGTERM
    finally:
        server.stop()
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "shutting_down"
    logger.info("drain timeout 1 s: stream ended after %.2f s", time.monotonic() - started)


def test_a_hung_triton_gives_504_within_the_model_timeout(triton: Triton, api: Api) -> None:
    triton.signal_server(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = api.post(EMBEDDINGS, embed_body())
        elapsed = time.monotonic() - started
    finally:
        triton.signal_server(signal.SIGCONT)
    logger.info("hung Triton: %d after %.2f s", response.status_code, elapsed)
    assert response.status_code == 504
    assert error_code(response) == "timeout"
    assert EMBEDDING_TIMEOUT_S <= elapsed < EMBEDDING_TIMEOUT_S + 2
    wait_for(lambda: api.post(EMBEDDINGS, embed_body()).status_code == 200, timeout_s=30)


def test_one_failing_model_is_cut_off_while_the_other_serves(triton: Triton, api: Api) -> None:
    triton.repository("embedding", "unload")
    codes = [error_code(api.post(EMBEDDINGS, embed_body())) for _ in range(3)]
    assert codes == ["backend_unavailable"] * 3
    started = time.monotonic()
    refused = api.post(EMBEDDINGS, embed_body())
    fail_fast_s = time.monotonic() - started
    assert (refused.status_code, error_code(refused)) == (503, "circuit_open")
    assert int(refused.headers["Retry-After"]) >= 1
    ready = httpx.get(f"{api.url}/health/ready", timeout=10)
    metrics = httpx.get(f"{api.url}/metrics", headers=api.headers, timeout=10).text
    assert ready.status_code == 503
    # "unresponsive" once the active probe has failed too (api/backend/probe.py).
    assert ready.json()["degraded"] in ({"embedding": "open"}, {"embedding": "unresponsive"})
    assert 'api_circuit_breaker_state{model="embedding",state="open"} 1.0' in metrics
    assert api.post(CHAT, HELLO).status_code == 200  # the other model is unaffected

    triton.repository("embedding", "load")
    loaded = time.monotonic()
    recovery_s = wait_for(lambda: api.post(EMBEDDINGS, embed_body()).status_code == 200, 30)
    logger.info(
        "one model down: fail fast in %.3f s; serving again %.2f s after it was loaded",
        fail_fast_s,
        time.monotonic() - loaded,
    )
    assert recovery_s < 10
    assert httpx.get(f"{api.url}/health/ready", timeout=10).status_code == 200


def test_killing_triton_mid_stream_ends_the_stream_with_an_error_event(
    triton: Triton, api: Api
) -> None:
    events = stream_events(api, LONG_REPLY, after=5, action=triton.kill)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "backend_unavailable"
    assert error["type"] == "server_error"
    assert not any(json.loads(e)["choices"][0].get("finish_reason") for e in events[1:-2])


def test_while_triton_is_down_requests_fail_fast_with_retry_after(api: Api) -> None:
    timings: list[tuple[str, float]] = []
    for _ in range(8):
        started = time.monotonic()
        response = api.post(CHAT, HELLO)
        timings.append((error_code(response), time.monotonic() - started))
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
    logger.info("Triton down: %s", [(code, round(s, 3)) for code, s in timings])
    fast = [seconds for code, seconds in timings if code == "circuit_open"]
    assert len(fast) >= 4
    assert max(fast) < 0.5  # no waiting on a dead backend (loaded CI machines are slow)
    started = time.monotonic()
    ready = httpx.get(f"{api.url}/health/ready", timeout=10)
    assert ready.status_code == 503
    assert time.monotonic() - started < 3


def test_the_api_recovers_by_itself_when_triton_returns(triton: Triton, api: Api) -> None:
    restart_started = time.monotonic()
    triton.start()
    restarted = time.monotonic()
    recovery_s = wait_for(lambda: api.post(CHAT, HELLO).status_code == 200, timeout_s=30)
    logger.info(
        "Triton restart took %.1f s; the API served again %.2f s after Triton was ready",
        restarted - restart_started,
        recovery_s,
    )
    assert recovery_s < 10
    # Each model is ready again once the prober has seen it answer (a tick, about 1 s).
    wait_for(lambda: httpx.get(f"{api.url}/health/ready", timeout=10).status_code == 200, 10)


def test_a_graceful_triton_stop_mid_stream_never_truncates_silently(
    triton: Triton, api: Api
) -> None:
    events = stream_events(api, LONG_REPLY, after=5, action=triton.stop)
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    # Triton either finished the running request before exiting or it was cut: both say so.
    assert "error" in last or last["choices"][0]["finish_reason"] == "length"
    response = api.post(CHAT, HELLO)
    assert response.status_code == 503
    assert error_code(response) in {"backend_unavailable", "circuit_open"}
