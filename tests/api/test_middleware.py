"""Request ids on every answer, and an unexpected error that neither loses it nor the connection."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Iterator

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.types import GenerationChunk, GenerationRequest
from api.settings import Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


class BrokenBackend(FakeBackend):
    """Fails with a bug (not an APIError) when the prompt says so."""

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if "crash" in (request.messages_json or ""):
            raise RuntimeError("a bug")
        async for chunk in super().generate(request):
            yield chunk


def crash_body() -> dict[str, object]:
    return {**CHAT, "messages": [{"role": "user", "content": "crash"}]}


@pytest.fixture
def broken_client() -> Iterator[TestClient]:
    app = create_app(Settings(), backend_factory=lambda _: BrokenBackend())
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as client:
        yield client


def test_unexpected_error_is_a_500_envelope_with_the_request_id(
    broken_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = broken_client.post(
        "/v1/chat/completions", json=crash_body(), headers={"X-Request-ID": "req-42"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-42"
    assert response.json()["error"] == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert any("unhandled error" in record.message for record in caplog.records)
    generated = broken_client.post("/v1/chat/completions", json=crash_body())
    assert generated.status_code == 500 and len(generated.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/chat/completions", {"model": "tiny-chat"}, 400),
        ("POST", "/v1/chat/completions", {**CHAT, "model": "nope"}, 404),
        ("GET", "/v1/chat/completions", None, 405),
        ("GET", "/v1/nothing", None, 404),
    ],
)
def test_every_error_carries_the_request_id(
    client: TestClient, method: str, path: str, body: object, status: int
) -> None:
    response = client.request(method, path, json=body, headers={"X-Request-ID": "req-7"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "req-7"
    unauthenticated = client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert unauthenticated.status_code == 401 and unauthenticated.headers["x-request-id"]


@pytest.fixture
def served_url() -> Iterator[str]:
    """The app behind a real uvicorn, so connections are real keep-alive connections."""
    app = create_app(Settings(), backend_factory=lambda _: BrokenBackend())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_the_connection_stays_usable_after_an_unexpected_error(served_url: str) -> None:
    with httpx.Client(base_url=served_url, headers=AUTH) as http:
        failed = http.post("/v1/chat/completions", json=crash_body())
        assert failed.status_code == 500 and failed.headers["x-request-id"]
        assert failed.headers.get("connection") != "close"
        stream = failed.extensions["network_stream"]
        ok = http.post("/v1/chat/completions", json=CHAT)
        assert ok.status_code == 200
        # The same TCP connection answered both: the server did not close it.
        assert ok.extensions["network_stream"] is stream
        bad = http.post("/v1/chat/completions", json={**CHAT, "seed": -1})
        assert bad.status_code == 400 and bad.extensions["network_stream"] is stream
