"""Routing by model to its Triton endpoint, as a client sees it: the real app and guards over
fake servers (one scripted backend per address), each model group on its own endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.admission import Admission
from api.backend.replica_set import ReplicaSet
from api.backend.routing import (
    RoutingBackend,
    build_routing_backend,
    serving_replicas,
    split_route,
)
from api.backend.triton_grpc import TritonGrpcBackend
from api.errors import BackendUnavailableError
from api.registry import ModelRegistry
from api.settings import (
    ModelKind,
    ResilienceSettings,
    ServedModel,
    Settings,
    TritonEndpoint,
    TritonSettings,
)
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = "/v1/chat/completions"


def ask(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


def two_groups() -> Settings:
    """tiny-chat on two replicas of "chat", tiny-sql on "sql": both Triton models "ensemble"."""
    models = [
        ServedModel(id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble", endpoint="chat"),
        ServedModel(id="tiny-sql", kind=ModelKind.CHAT, triton_model="ensemble", endpoint="sql"),
    ]
    triton = TritonSettings(
        endpoints={
            "chat": TritonEndpoint(addresses=["chat-0:8001", "chat-1:8001"]),
            "sql": TritonEndpoint(target="sql-0:8001"),
        }
    )
    resilience = ResilienceSettings(
        breaker_failure_threshold=2, retry_backoff_s=0.001, probe_interval_s=0
    )
    return Settings(models=models, triton=triton, resilience=resilience)


class Servers(dict[str, FakeBackend]):
    """The fake server behind each address, made when the backend first asks for it."""

    def __call__(self, address: str) -> FakeBackend:
        return self.setdefault(address, FakeBackend(reply=f"from {address}"))


@pytest.fixture
def servers() -> Servers:
    return Servers()


@pytest.fixture
def client(servers: Servers) -> Iterator[TestClient]:
    app = create_app(two_groups(), backend_factory=lambda s: build_routing_backend(s, servers))
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


def test_endpoints_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = {
        "chat": {"target": "dns:///triton-chat-headless.ns.svc:8001"},
        "sql": {"addresses": ["10.0.0.5:8001"]},
    }
    monkeypatch.setenv("API_TRITON__ENDPOINTS", json.dumps(endpoints))
    models = [{"id": "m", "kind": "chat", "triton_model": "ensemble", "endpoint": "sql"}]
    monkeypatch.setenv("API_MODELS", json.dumps(models))
    settings = Settings()
    assert settings.triton.endpoints["chat"].target == "dns:///triton-chat-headless.ns.svc:8001"
    assert settings.models[0].route == "sql/ensemble"
    monkeypatch.setenv("API_MODELS", json.dumps([{**models[0], "endpoint": "nowhere"}]))
    with pytest.raises(ValidationError, match="nowhere"):
        Settings()
    with pytest.raises(ValidationError, match="exactly one"):
        TritonEndpoint(target="a:1", addresses=["b:1"])


async def test_the_default_endpoint_is_the_url_as_before() -> None:
    settings = Settings()
    assert [model.route for model in settings.models] == ["ensemble", "embedding"]
    backend = build_routing_backend(settings)  # a gRPC channel: made on the event loop
    assert isinstance(backend, TritonGrpcBackend) and backend.address == settings.triton.url
    await backend.close()
    registry = ModelRegistry(settings.models)
    assert registry.triton_models() == ["embedding", "ensemble"]


def test_the_registry_hands_out_routes_and_knows_who_serves_them() -> None:
    registry = ModelRegistry(two_groups().models)
    assert registry.get("tiny-sql").triton_model == "sql/ensemble"
    assert registry.triton_models() == ["chat/ensemble", "sql/ensemble"]
    assert registry.served_by("sql/ensemble") == ["tiny-sql"]
    assert split_route("sql/ensemble") == ("sql", "ensemble")
    assert split_route("ensemble") == ("default", "ensemble")


def test_each_model_reaches_its_own_endpoint(client: TestClient, servers: Servers) -> None:
    sql = client.post(CHAT, json=ask("tiny-sql"))
    assert sql.json()["choices"][0]["message"]["content"] == "from sql-0:8001"
    chat = client.post(CHAT, json=ask("tiny-chat"))
    assert chat.json()["choices"][0]["message"]["content"].startswith("from chat-")
    # Each server is asked for its own Triton model name, never the route.
    assert {r.triton_model for s in servers.values() for r in s.requests} == {"ensemble"}
    assert len(servers["sql-0:8001"].requests) == 1


def test_one_endpoint_down_leaves_the_other_serving_and_readiness_names_it(
    client: TestClient, servers: Servers
) -> None:
    down = servers["sql-0:8001"]
    down.fail_before_first = BackendUnavailableError("connection refused")
    down.ready = False
    assert client.post(CHAT, json=ask("tiny-sql")).status_code == 503
    assert client.post(CHAT, json=ask("tiny-chat")).status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["served_models"] == {"tiny-chat": "ready", "tiny-sql": "unavailable"}
    assert body["models"] == {"chat/ensemble": True, "sql/ensemble": False}
    assert body["replicas"]["chat"] == {"chat-0:8001": "ready", "chat-1:8001": "ready"}
    assert client.get("/health/ready", params={"model": "tiny-chat"}).status_code == 200
    assert client.get("/health/ready", params={"model": "tiny-sql"}).status_code == 503
    assert client.get("/health/ready", params={"model": "nope"}).status_code == 404
    # The API pod itself still serves (the chart's readiness probe): chat is up.
    assert client.get("/health/ready", params={"require": "any"}).status_code == 200
    down_too = servers["chat-0:8001"], servers["chat-1:8001"]
    for server in down_too:
        server.ready = False
    assert client.get("/health/ready", params={"require": "any"}).status_code == 503
    assert client.get("/health/ready", params={"require": "some"}).status_code == 400


def test_breakers_are_per_endpoint(client: TestClient, servers: Servers) -> None:
    servers["sql-0:8001"].fail_before_first = BackendUnavailableError("connection refused")
    for _ in range(2):
        client.post(CHAT, json=ask("tiny-sql"))
    refused = client.post(CHAT, json=ask("tiny-sql"))
    assert refused.json()["error"]["code"] == "circuit_open"
    # The chat model shares the Triton model name "ensemble" but not the breaker.
    assert client.post(CHAT, json=ask("tiny-chat")).status_code == 200
    cards = {card["id"]: card["status"] for card in client.get("/v1/models").json()["data"]}
    assert cards == {"tiny-chat": "ready", "tiny-sql": "unavailable"}
    assert client.get("/v1/models/tiny-sql").json()["status"] == "unavailable"
    assert client.get("/health/ready").json()["degraded"] == {"sql/ensemble": "open"}


def test_requests_spread_over_the_replicas_of_an_endpoint(
    client: TestClient, servers: Servers
) -> None:
    for _ in range(20):
        assert client.post(CHAT, json=ask("tiny-chat")).status_code == 200
    counts = [len(servers[f"chat-{i}:8001"].requests) for i in range(2)]
    # Sequential requests tie at 0 in flight: random among the two, both used.
    assert sum(counts) == 20 and min(counts) >= 3


def test_a_replica_that_refuses_is_skipped_without_an_error(
    client: TestClient, servers: Servers
) -> None:
    client.post(CHAT, json=ask("tiny-chat"))
    servers["chat-0:8001"].fail_before_first = BackendUnavailableError("connection refused")
    replies = [client.post(CHAT, json=ask("tiny-chat")) for _ in range(10)]
    assert all(r.status_code == 200 for r in replies)
    assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {"from chat-1:8001"}


async def test_routing_backend_readiness_merges_endpoints() -> None:
    chat, sql = FakeBackend(), FakeBackend(ready=False)
    backend = RoutingBackend({"chat": chat, "sql": sql})
    readiness = await backend.readiness(["chat/ensemble", "sql/ensemble"])
    assert readiness.models == {"chat/ensemble": True, "sql/ensemble": False}
    assert not readiness.server_ready
    only_chat = await backend.readiness(["chat/ensemble"])
    assert only_chat.ready


async def test_admission_gives_each_replica_in_rotation_an_engines_worth() -> None:
    """One engine's slots per replica: two chat replicas admit twice what one does, and a
    replica taken out of rotation takes its slots with it."""
    settings = two_groups()
    servers = Servers()
    backend = build_routing_backend(settings, servers)
    counts = serving_replicas(backend)
    admission = Admission(settings.resilience, {"chat/ensemble": 10, "sql/ensemble": 10}, counts)
    assert isinstance(backend, RoutingBackend)
    chat = backend.endpoints["chat"]
    assert isinstance(chat, ReplicaSet)
    chat.reconcile(["chat-0:8001", "chat-1:8001"])
    assert (counts("chat/ensemble"), counts("sql/ensemble")) == (2, 1)
    assert (admission.capacity("chat/ensemble"), admission.capacity("sql/ensemble")) == (20, 10)
    assert admission.gate("chat/ensemble").max_in_flight == 20
    chat.replicas[0].ejected_until = 1e18  # out of rotation
    assert admission.gate("chat/ensemble").max_in_flight == 10
    await backend.close()
