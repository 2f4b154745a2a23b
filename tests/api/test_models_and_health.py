from __future__ import annotations

from starlette.testclient import TestClient

from tests.api.fakes import FakeBackend


def test_list_and_retrieve_models(client: TestClient) -> None:
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    ids = [model["id"] for model in listing["data"]]
    assert ids == ["tiny-chat", "all-minilm-l6-v2"]
    card = client.get("/v1/models/tiny-chat").json()
    assert card["object"] == "model"
    assert "chat" in card["capabilities"]
    assert client.get("/v1/models/nope").status_code == 404


def test_live_and_ready(client: TestClient, backend: FakeBackend) -> None:
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"embedding": True, "ensemble": True}
    backend.ready = False
    assert client.get("/health/ready").status_code == 503
