from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import pytest
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api import cli
from api.app import create_app
from api.auth.keys import generate_key, hash_key, matches
from api.settings import Settings
from api.storage import migrate
from api.storage.engine import create_engine
from api.storage.keys import KeyStore, NewKey
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
PUBLIC = {"/health/live", "/health/ready"}


def new_key(client: TestClient, **fields: object) -> dict[str, object]:
    org = client.post("/v1/admin/organizations", json={"name": f"org-{generate_key()[-8:]}"})
    assert org.status_code == 201, org.text
    body = {"org_id": org.json()["id"], "name": "test", **fields}
    created = client.post("/v1/admin/keys", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, object] = created.json()
    return result


def bearer(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_random_hashed_and_compared_in_constant_time() -> None:
    key = generate_key()
    assert key.startswith("sk-") and len(key) > 40 and key != generate_key()
    assert matches(key, hash_key(key)) and not matches(key + "x", hash_key(key))


def test_every_route_but_health_needs_an_identity(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    checked = 0
    for route in client.app.routes:  # type: ignore[attr-defined]
        path = re.sub(r"{[^}]+}", "x", route.path)
        if isinstance(route, WebSocketRoute):
            with pytest.raises(WebSocketDisconnect), anonymous.websocket_connect(path):
                pass
            checked += 1
            continue
        assert isinstance(route, Route)
        for method in route.methods or ():
            response = anonymous.request(method, path)
            if route.path in PUBLIC:
                assert response.status_code in (200, 503)
                continue
            assert response.status_code == 401, (method, path)
            if method != "HEAD":
                assert response.json()["error"]["code"] == "invalid_api_key"
            checked += 1
    assert checked >= 10
    assert anonymous.get("/no/such/route").status_code == 401


def test_bearer_and_x_api_key_are_accepted_and_wrong_keys_refused(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.get("/v1/models", headers=bearer(TEST_KEY)).status_code == 200
    assert anonymous.get("/v1/models", headers={"X-API-Key": TEST_KEY}).status_code == 200
    wrong = anonymous.get("/v1/models", headers=bearer(generate_key()))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


def test_scope_and_model_allowlist_give_403(client: TestClient) -> None:
    created = new_key(client, scopes=["inference"], models=["all-minilm-l6-v2"])
    anonymous = TestClient(client.app)
    assert anonymous.get("/v1/admin/keys", headers=bearer(created["key"])).status_code == 403
    chat = anonymous.post(CHAT, json=HELLO, headers=bearer(created["key"]))
    assert chat.status_code == 403 and chat.json()["error"]["code"] == "model_not_allowed"
    embed = {"model": "all-minilm-l6-v2", "input": "hi"}
    ok = anonymous.post("/v1/embeddings", json=embed, headers=bearer(created["key"]))
    assert ok.status_code == 200


def test_revocation_takes_effect_on_the_next_request(client: TestClient) -> None:
    created = new_key(client)
    anonymous = TestClient(client.app)
    assert anonymous.post(CHAT, json=HELLO, headers=bearer(created["key"])).status_code == 200
    revoked = client.delete(f"/v1/admin/keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert anonymous.post(CHAT, json=HELLO, headers=bearer(created["key"])).status_code == 401
    listed = {k["id"]: k for k in client.get("/v1/admin/keys").json()["data"]}
    assert "key" not in listed[created["id"]] and listed[created["id"]]["hint"].startswith("sk-")


def test_expired_key_is_refused(client: TestClient) -> None:
    created = new_key(client, expires_in_days=1)
    anonymous = TestClient(client.app)
    assert anonymous.get("/v1/models", headers=bearer(created["key"])).status_code == 200
    expired = new_key(client, expires_in_days=1e-9)
    assert anonymous.get("/v1/models", headers=bearer(expired["key"])).status_code == 401


def test_keys_are_stored_only_as_hashes(client: TestClient, tmp_path: Path) -> None:
    created = new_key(client)
    dump = "\n".join(sqlite3.connect(tmp_path / "api.db").iterdump())
    assert str(created["key"]) not in dump and TEST_KEY not in dump
    assert hash_key(str(created["key"])) in dump


def test_cli_creates_lists_and_revokes_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: FakeBackend
) -> None:
    assert cli.main(["orgs", "create", "acme", "--tier", "free"]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "create", "--org", "acme", "--scopes", "inference"]) == 0
    created = _json_out(capsys)
    assert created["tier"] == "free" and str(created["key"]).startswith("sk-")
    with TestClient(create_app(_settings(), backend_factory=lambda _: backend)) as app_client:
        assert app_client.get("/v1/models", headers=bearer(created["key"])).status_code == 200
        assert cli.main(["keys", "revoke", str(created["id"])]) == 0
        capsys.readouterr()
        # Without Redis another process's revocation is seen when the cache entry expires.
        app_client.app.state.gateway.resolver.forget(created["id"])  # type: ignore[attr-defined]
        assert app_client.get("/v1/models", headers=bearer(created["key"])).status_code == 401
    assert cli.main(["keys", "list", "--org", "acme"]) == 0
    assert str(created["key"]) not in capsys.readouterr().out


def _settings() -> Settings:
    return Settings()  # from the environment, like the CLI's


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_authenticated_requests_work(client: TestClient) -> None:
    assert client.post(CHAT, json=HELLO).status_code == 200
    assert client.get("/v1/models", headers=AUTH).status_code == 200


def test_tier_limits_are_json_integers(client: TestClient) -> None:
    path = "/v1/admin/tiers/strict-tier"
    refused = client.put(path, json={"tokens_per_day": True})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert client.put(path, json={"tokens_per_day": "5"}).status_code == 400
    stored = client.put(
        path, json={"tokens_per_day": 5, "models": {"tiny-chat": {"tokens_per_minute": 9}}}
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["tokens_per_day"] == 5


# --- the operator scope: upgrading from a release where every admin was one ----------------


async def _admins_after_upgrade(url: str) -> dict[str, tuple[str, ...]]:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, "0002")
        store = KeyStore(engine)
        platform = await store.create_org("default", "unlimited")
        tenant = await store.create_org("acme", "default")
        for org, name, scopes in (
            (platform, "first-admin", ["admin", "inference"]),
            (platform, "user", ["inference"]),
            (tenant, "tenant-admin", ["admin"]),
        ):
            await store.create_key(NewKey(org.id, name, scopes))
        await migrate.upgrade(engine)
        return {record.name: record.scopes for record in await store.list_keys()}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_migration_keeps_the_platforms_admins_operators(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    scopes = asyncio.run(_admins_after_upgrade(url))
    assert scopes == {
        "first-admin": ("operator", "admin", "inference"),
        "user": ("inference",),
        # An admin of any other organization is now that organization's admin only.
        "tenant-admin": ("admin",),
    }


def test_a_bootstrap_key_stored_as_admin_becomes_the_operator(backend: FakeBackend) -> None:
    with TestClient(create_app(_settings(), backend_factory=lambda _: backend), headers=AUTH) as c:
        bootstrap = next(
            k for k in c.get("/v1/admin/keys").json()["data"] if k["name"] == "bootstrap"
        )
        store = c.app.state.gateway.keys  # type: ignore[attr-defined]
        assert c.portal is not None
        c.portal.call(store.set_scopes, bootstrap["id"], ["admin", "inference"])
    with TestClient(create_app(_settings(), backend_factory=lambda _: backend), headers=AUTH) as c:
        listed = {k["id"]: k for k in c.get("/v1/admin/keys").json()["data"]}
        assert listed[bootstrap["id"]]["scopes"] == ["operator", "admin", "inference"]
        assert c.post("/v1/admin/organizations", json={"name": "x"}).status_code == 201


def test_the_cli_mints_operators_and_refuses_unknown_scopes(
    capsys: pytest.CaptureFixture[str], backend: FakeBackend
) -> None:
    assert cli.main(["orgs", "create", "ops"]) == 0
    assert cli.main(["keys", "create", "--org", "ops", "--scopes", "root"]) == 2
    assert "Unknown scope 'root'" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--org", "ops", "--scopes", "operator,inference"]) == 0
    created = _json_out(capsys)
    admin = ["keys", "create", "--org", "ops", "--scopes", "admin"]
    assert cli.main(admin) == 0
    org_admin = _json_out(capsys)
    with TestClient(create_app(_settings(), backend_factory=lambda _: backend)) as app_client:
        orgs = app_client.get("/v1/admin/organizations", headers=bearer(created["key"]))
        assert orgs.status_code == 200 and len(orgs.json()["data"]) == 2
        own = app_client.get("/v1/admin/organizations", headers=bearer(org_admin["key"]))
        assert [org["name"] for org in own.json()["data"]] == ["ops"]
