"""Each WebSocket message is limited and recorded; model lists follow the key's allowlist."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from api.app import create_app
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY, gateway_settings
from tests.api.test_auth import bearer, new_key
from tests.api.test_usage import flush
from tests.api.test_websocket import REQUEST, WS, receive_until_done


def test_each_message_takes_the_request_rate_limit(tmp_path: Path, backend: FakeBackend) -> None:
    settings = gateway_settings(
        tmp_path,
        limits={"tiers": {"default": {}, "tight": {"requests_per_minute": 2}}},
        auth={"bootstrap_key": TEST_KEY, "bootstrap_tier": "tight"},
    )
    app = create_app(settings, backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client, client.websocket_connect(WS) as ws:
        outcomes = []
        for _ in range(3):
            ws.send_text(json.dumps(REQUEST))
            outcomes.append(json.loads(receive_until_done(ws)[-1]))
    assert "choices" in outcomes[0] and "choices" in outcomes[1]
    error = outcomes[2]["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "requests per min" in error["message"]
    # The handshake itself took no request: the two messages did.
    assert len(backend.requests) == 2


def test_each_message_leaves_a_usage_record(client: TestClient, backend: FakeBackend) -> None:
    with client.websocket_connect(WS) as ws:
        for _ in range(2):
            ws.send_text(json.dumps(REQUEST))
            receive_until_done(ws)
    flush(client)
    rows = client.get("/v1/usage", params={"group_by": "model"}).json()["data"]
    chat = next(row for row in rows if row["model"] == "tiny-chat")
    assert chat["requests"] == 2
    assert (chat["prompt_tokens"], chat["completion_tokens"]) == (14, 12)


def test_messages_follow_the_model_allowlist(client: TestClient) -> None:
    created = new_key(client, scopes=["inference"], models=["all-minilm-l6-v2"])
    limited = TestClient(client.app, headers=bearer(created["key"]))
    with limited.websocket_connect(WS) as ws:
        ws.send_text(json.dumps(REQUEST))
        (error,) = receive_until_done(ws)
    assert json.loads(error)["error"]["code"] == "model_not_allowed"


def test_models_are_listed_only_when_the_key_may_use_them(client: TestClient) -> None:
    everything = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert everything == {"tiny-chat", "all-minilm-l6-v2"}
    created = new_key(client, scopes=["inference"], models=["all-minilm-l6-v2"])
    limited = TestClient(client.app, headers=bearer(created["key"]))
    assert [m["id"] for m in limited.get("/v1/models").json()["data"]] == ["all-minilm-l6-v2"]
    hidden = limited.get("/v1/models/tiny-chat")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "model_not_found"
    assert limited.get("/v1/models/text-embedding-minilm").status_code == 200
