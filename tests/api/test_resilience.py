"""The guards as a client sees them: breaker, overload, deadlines, draining, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from api.app import begin_drain, create_app
from api.backend.types import GenerationChunk, GenerationRequest
from api.errors import BackendUnavailableError
from api.settings import ModelKind, ResilienceSettings, ServedModel, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
EMBED = {"model": "all-minilm-l6-v2", "input": "hello"}


def settings(**resilience: Any) -> Settings:
    models = [
        ServedModel(
            id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble", request_timeout_s=0.3
        ),
        ServedModel(
            id="all-minilm-l6-v2",
            kind=ModelKind.EMBEDDING,
            triton_model="embedding",
            embedding_dimensions=384,
        ),
    ]
    options = {"breaker_failure_threshold": 3, "retry_backoff_s": 0.001, **resilience}
    return Settings(models=models, resilience=ResilienceSettings(**options))


@pytest.fixture
def app(backend: FakeBackend) -> Starlette:
    return create_app(settings(), backend_factory=lambda _: backend)


@pytest.fixture
def guarded(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


def sse_payloads(text: str) -> list[str]:
    return [frame.removeprefix("data: ") for frame in text.split("\n\n") if frame]


def test_breaker_opens_fails_fast_and_readiness_reports_it(
    guarded: TestClient, backend: FakeBackend
) -> None:
    backend.fail_before_first = BackendUnavailableError("down")
    codes = [guarded.post(CHAT, json=HELLO).json()["error"]["code"] for _ in range(3)]
    assert codes == ["backend_unavailable"] * 3
    assert len(backend.requests) == 9  # each request tried three times (retries)
    refused = guarded.post(CHAT, json=HELLO)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "circuit_open"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(backend.requests) == 9  # failing fast: Triton is not asked
    ready = guarded.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "degraded"
    assert ready.json()["degraded"] == {"ensemble": "open"}
    assert guarded.post("/v1/embeddings", json=EMBED).status_code == 200  # other model serves


def test_breaker_state_is_in_the_metrics(guarded: TestClient, backend: FakeBackend) -> None:
    backend.fail_before_first = BackendUnavailableError("down")
    for _ in range(4):
        guarded.post(CHAT, json=HELLO)
    guarded.post("/v1/embeddings", json=EMBED)
    text = guarded.get("/metrics").text
    assert 'api_circuit_breaker_state{model="ensemble",state="open"} 1.0' in text
    assert 'api_circuit_breaker_state{model="embedding",state="closed"} 1.0' in text
    assert 'api_circuit_breaker_rejected_total{model="ensemble"} 1.0' in text
    assert 'api_requests_in_flight{model="ensemble"} 0.0' in text


def test_a_slow_model_gets_504(guarded: TestClient, backend: FakeBackend) -> None:
    backend.chunk_delay_s = 0.1
    response = guarded.post(CHAT, json=HELLO)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert backend.closed_streams == 1


def test_a_stream_past_its_deadline_ends_with_an_error_event(
    guarded: TestClient, backend: FakeBackend
) -> None:
    backend.chunk_delay_s = 0.1
    with guarded.stream("POST", CHAT, json={**HELLO, "stream": True}) as response:
        assert response.status_code == 200
        events = sse_payloads(response.read().decode())
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "timeout"
    assert any(json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-2])


@pytest.fixture
async def async_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH
        ) as async_client:
            yield async_client


@pytest.mark.parametrize("max_queue", [0, 2])
async def test_beyond_the_queue_requests_are_refused_not_slowed(
    backend: FakeBackend, max_queue: int
) -> None:
    app = create_app(
        settings(max_in_flight=2, max_queue=max_queue), backend_factory=lambda _: backend
    )
    backend.chunk_delay_s = 0.01
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
            replies = await asyncio.gather(*(c.post(CHAT, json=HELLO) for _ in range(8)))
    codes = sorted(reply.status_code for reply in replies)
    assert codes == [200] * (2 + max_queue) + [503] * (6 - max_queue)
    refused = next(reply for reply in replies if reply.status_code == 503)
    assert refused.json()["error"]["code"] == "model_overloaded"
    assert refused.headers["Retry-After"] == "1"


async def test_draining_refuses_new_requests_and_reports_not_ready(
    app: Starlette, async_client: httpx.AsyncClient
) -> None:
    assert (await async_client.post(CHAT, json=HELLO)).status_code == 200
    begin_drain(app)
    refused = await async_client.post(CHAT, json=HELLO)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "shutting_down"
    ready = await async_client.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")


class GoesSilent(FakeBackend):
    """Streams two chunks, then nothing (the engine's stub was killed); so does every probe."""

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        yield GenerationChunk(prompt_tokens=self.prompt_tokens)
        yield GenerationChunk(text="Hello", completion_tokens=1)
        await asyncio.Event().wait()


async def test_a_model_that_goes_silent_ends_its_streams_and_turns_readiness_503() -> None:
    backend = GoesSilent()
    options = {"stream_idle_timeout_s": 0.1, "probe_interval_s": 0.2, "probe_timeout_s": 0.2}
    app = create_app(settings(**options), backend_factory=lambda _: backend)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
            started = asyncio.get_running_loop().time()
            replies = await asyncio.gather(
                *(c.post(CHAT, json={**HELLO, "stream": True}) for _ in range(4))
            )
            ended = asyncio.get_running_loop().time() - started
            for _ in range(50):
                # Real failures open the breaker first; the probe then finds the model dead.
                ready = await c.get("/health/ready")
                if ready.json()["degraded"].get("ensemble") == "unresponsive":
                    break
                await asyncio.sleep(0.05)
            refused = await c.post(CHAT, json=HELLO)
    assert ended < 0.3  # the idle bound ends them before the 0.3 s request timeout
    for reply in replies:
        events = sse_payloads(reply.text)
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert error["code"] == "timeout" and "sent nothing" in error["message"]
    assert ready.status_code == 503
    assert ready.json()["degraded"]["ensemble"] == "unresponsive"
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "circuit_open")
