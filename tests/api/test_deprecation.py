from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import DeprecationNotice, Settings, default_models
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

NOTICE = DeprecationNotice(
    since=datetime(2026, 1, 1, tzinfo=UTC),
    sunset=datetime(2027, 1, 1, tzinfo=UTC),
    link="https://example.invalid/deprecations",
)


@pytest.fixture
def deprecating_client() -> Iterator[TestClient]:
    chat, embedding = default_models()
    chat = chat.model_copy(
        update={"aliases": ["tiny-chat-old"], "deprecated_names": {"tiny-chat-old": NOTICE}}
    )
    settings = Settings(models=[chat, embedding], deprecated_routes={"/v1/completions": NOTICE})
    app = create_app(settings, backend_factory=lambda _: FakeBackend())
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_deprecated_model_name_gets_headers(deprecating_client: TestClient) -> None:
    message = [{"role": "user", "content": "hi"}]
    old = deprecating_client.post(
        "/v1/chat/completions", json={"model": "tiny-chat-old", "messages": message}
    )
    assert old.status_code == 200
    assert old.headers["deprecation"] == f"@{int(NOTICE.since.timestamp())}"
    assert old.headers["sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
    assert old.headers["link"] == '<https://example.invalid/deprecations>; rel="deprecation"'
    current = deprecating_client.post(
        "/v1/chat/completions", json={"model": "tiny-chat", "messages": message}
    )
    assert "deprecation" not in current.headers
    card = deprecating_client.get("/v1/models/tiny-chat").json()
    assert card["deprecated"] is True and card["aliases"] == ["tiny-chat-old"]


def test_deprecated_route_gets_headers_streaming_too(deprecating_client: TestClient) -> None:
    body = {"model": "tiny-chat", "prompt": "x", "stream": True}
    with deprecating_client.stream("POST", "/v1/completions", json=body) as response:
        assert response.headers["sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
        assert response.read().endswith(b"data: [DONE]\n\n")
    assert "sunset" not in deprecating_client.get("/v1/models").headers


def test_model_card_details(client: TestClient) -> None:
    card = client.get("/v1/models/tiny-chat").json()
    assert card["context_length"] == 1024
    assert card["parameters"] == "3.7M"
    assert card["capabilities"] == ["chat", "completion", "tools"]
    embedding = client.get("/v1/models/all-minilm-l6-v2").json()
    assert embedding["embedding_dimensions"] == 384


def test_a_route_template_names_every_path_it_matches() -> None:
    messages = "/v1/conversations/{conversation_id}/messages"
    settings = Settings(deprecated_routes={messages: NOTICE})
    app = create_app(settings, backend_factory=lambda _: FakeBackend())
    with TestClient(app, headers=AUTH) as client:
        created = client.post("/v1/conversations", json={"model": "tiny-chat"}).json()
        base = f"/v1/conversations/{created['id']}"
        # The settings' notice replaces the built-in one of the same route.
        assert client.get(f"{base}/messages").headers["sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
        assert client.get("/v1/conversations/anything/messages").status_code == 404
        assert "deprecation" in client.get("/v1/conversations/anything/messages").headers
        for path in (base, f"{base}/items", f"{base}/messages/extra"):
            assert "deprecation" not in client.get(path).headers, path
