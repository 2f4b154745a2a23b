"""The ceiling benchmark's app: the real API over the zero-cost backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from api.app import create_app
from api.auth.middleware import AuthMiddleware
from api.settings import AuthSettings, DatabaseSettings, Settings, UsageSettings
from benchmarks.inprocess import ZeroCostBackend, without_gateway

KEY = "sk-bench-test-0123456789abcdefghijklmnop"


def chat(**options: Any) -> dict[str, Any]:
    return {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], **options}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"),
        usage=UsageSettings(journal_dir=tmp_path / "journal"),
        auth=AuthSettings(bootstrap_key=SecretStr(KEY)),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, backend_factory=lambda _: ZeroCostBackend())
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as test_client:
        yield test_client


def test_streams_exactly_max_tokens_content_chunks(client: TestClient) -> None:
    body = chat(max_tokens=12, stream=True)
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        assert reply.status_code == 200
        frames = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [orjson.loads(frame) for frame in frames[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert sum(bool(text) for text in contents) == 12
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_non_streaming_and_embeddings(client: TestClient) -> None:
    body = chat(max_tokens=5)
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200
    assert reply.json()["usage"]["completion_tokens"] == 5
    vectors = client.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": ["a", "b"]})
    assert vectors.status_code == 200
    assert len(vectors.json()["data"][1]["embedding"]) == 384


def test_without_gateway_drops_auth_limits_and_usage(settings: Settings) -> None:
    app = create_app(settings, backend_factory=lambda _: ZeroCostBackend())
    kept = without_gateway(app.user_middleware)
    assert AuthMiddleware not in [cast(object, entry.cls) for entry in kept]
    assert 0 < len(kept) < len(app.user_middleware)
    app.user_middleware = kept
    with TestClient(app) as bare:  # no key at all
        assert bare.post("/v1/chat/completions", json=chat()).status_code == 200
