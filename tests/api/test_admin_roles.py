"""Every admin route under both roles and across organizations.

The platform operator (the bootstrap key, ``AUTH``) reaches everything. An organization's admin
(``admin`` scope) reaches its own organization: another organization's keys and usage answer
404 like ids that do not exist, what only the operator may do answers 403, and the keys it
makes never exceed its own scopes, its organization's tier, allowlist or expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from api.auth.roles import tier_within
from api.settings import ModelLimits, TierLimits
from tests.api.batching import chat_line, create_batch, jsonl, upload
from tests.api.keys import AUTH

ORGS = "/v1/admin/organizations"
KEYS = "/v1/admin/keys"
USAGE = "/v1/admin/usage"
CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}

Headers = dict[str, str]


def bearer(key: str) -> Headers:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Org:
    """One tenant: its id, an admin key and an inference key (headers and ids)."""

    id: str
    admin: Headers
    admin_key_id: str
    user: Headers
    user_key_id: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    client: TestClient
    a: Org
    b: Org

    def call(self, method: str, path: str, headers: Headers, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=headers, **kwargs)


def make_key(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    created = client.post(KEYS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def make_org(client: TestClient, name: str, tier: str = "default") -> Org:
    org = client.post(ORGS, json={"name": name, "tier": tier}, headers=AUTH)
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    admin = make_key(client, AUTH, org_id=org_id, scopes=["admin"], name="admin")
    user = make_key(client, AUTH, org_id=org_id, scopes=["inference"], name="user")
    return Org(org_id, bearer(admin["key"]), admin["id"], bearer(user["key"]), user["id"])


@pytest.fixture
def world(client: TestClient) -> Iterator[World]:
    a, b = make_org(client, "alpha"), make_org(client, "beta")
    for org in (a, b):
        assert client.post(CHAT, json=HELLO, headers=org.user).status_code == 200
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(gateway.recorder.flush)
    yield World(client, a, b)


def assert_error(response: Any, status: int, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


# --- the routes ------------------------------------------------------------------------


def test_every_admin_route_is_covered_here(client: TestClient) -> None:
    served = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/v1/admin"):
            served |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    assert served == set(COVERED), "an admin route without a role test"


def test_organizations_create_is_the_operators(world: World) -> None:
    assert_error(world.call("POST", ORGS, world.a.admin, json={"name": "gamma"}), 403)
    names = {o["name"] for o in world.call("GET", ORGS, AUTH).json()["data"]}
    assert "gamma" not in names
    created = world.call("POST", ORGS, AUTH, json={"name": "gamma"})
    assert created.status_code == 201, created.text


def test_organizations_list_shows_an_admin_its_own(world: World) -> None:
    everyone = world.call("GET", ORGS, AUTH)
    assert everyone.status_code == 200
    assert {world.a.id, world.b.id} <= {o["id"] for o in everyone.json()["data"]}
    for org in (world.a, world.b):
        own = world.call("GET", ORGS, org.admin)
        assert own.status_code == 200
        assert [o["id"] for o in own.json()["data"]] == [org.id]


def test_keys_list_across_organizations(world: World) -> None:
    a, b = world.a, world.b
    everyone = {k["org_id"] for k in world.call("GET", KEYS, AUTH).json()["data"]}
    assert {a.id, b.id} <= everyone
    of_b = world.call("GET", KEYS, AUTH, params={"org_id": b.id}).json()["data"]
    assert {k["id"] for k in of_b} == {b.admin_key_id, b.user_key_id}
    own = world.call("GET", KEYS, a.admin)
    assert own.status_code == 200
    assert {k["id"] for k in own.json()["data"]} == {a.admin_key_id, a.user_key_id}
    assert world.call("GET", KEYS, a.admin, params={"org_id": a.id}).status_code == 200
    assert_error(world.call("GET", KEYS, a.admin, params={"org_id": b.id}), 404, "org_id")


def test_keys_create_across_organizations(world: World) -> None:
    a, b = world.a, world.b
    for body in ({"org_id": b.id}, {"org_id": b.id, "scopes": ["inference"]}):
        assert_error(world.call("POST", KEYS, a.admin, json=body), 404, "org_id")
    missing = world.call("POST", KEYS, a.admin, json={"org_id": "org_doesnotexist"})
    foreign = world.call("POST", KEYS, a.admin, json={"org_id": b.id})
    # The same answer whether the organization exists elsewhere or not at all.
    assert missing.json()["error"]["code"] == foreign.json()["error"]["code"] == "not_found"
    assert {k["id"] for k in world.call("GET", KEYS, b.admin).json()["data"]} == {
        b.admin_key_id,
        b.user_key_id,
    }
    own = make_key(world.client, a.admin, org_id=a.id, name="mine")
    implicit = make_key(world.client, a.admin, name="implicit")
    assert own["org_id"] == implicit["org_id"] == a.id
    assert own["scopes"] == ["inference"] and own["tier"] == "default"
    by_operator = make_key(world.client, AUTH, org_id=b.id)
    assert by_operator["org_id"] == b.id
    new = bearer(own["key"])
    assert world.call("POST", CHAT, new, json=HELLO).status_code == 200


def test_an_org_admin_cannot_mint_scopes_it_lacks(world: World) -> None:
    a = world.a
    for scopes in (["operator"], ["inference", "operator"], ["metrics"]):
        assert_error(world.call("POST", KEYS, a.admin, json={"scopes": scopes}), 403, "scopes")
    listed = world.call("GET", KEYS, a.admin).json()["data"]
    assert all(set(k["scopes"]) <= {"admin", "inference"} for k in listed)
    peer = make_key(world.client, a.admin, scopes=["admin", "inference"])
    # ... nor can the admin it made: no chain of keys climbs above the first.
    assert_error(world.call("POST", KEYS, bearer(peer["key"]), json={"scopes": ["operator"]}), 403)
    operator = make_key(world.client, AUTH, org_id=a.id, scopes=["operator"])
    assert world.call("GET", ORGS, bearer(operator["key"])).status_code == 200


def test_an_org_admin_cannot_escalate_its_tier(world: World) -> None:
    a = world.a
    # "default" is this organization's tier; "unlimited" lifts every limit of it.
    assert_error(world.call("POST", KEYS, a.admin, json={"tier": "unlimited"}), 403, "tier")
    assert make_key(world.client, a.admin, tier="free")["tier"] == "free"
    assert make_key(world.client, a.admin, tier="default")["tier"] == "default"
    assert_error(world.call("POST", KEYS, a.admin, json={"tier": "nope"}), 400, "tier")
    # A stored tier: stricter in every limit is fine, one limit looser is not.
    strict = {
        "requests_per_minute": 10,
        "tokens_per_minute": 1000,
        "max_concurrent": 1,
        "tokens_per_day": 5000,
    }
    assert world.call("PUT", "/v1/admin/tiers/bronze", AUTH, json=strict).status_code == 200
    assert make_key(world.client, a.admin, tier="bronze")["tier"] == "bronze"
    looser = {**strict, "max_concurrent": 10_000}
    assert world.call("PUT", "/v1/admin/tiers/wide", AUTH, json=looser).status_code == 200
    assert_error(world.call("POST", KEYS, a.admin, json={"tier": "wide"}), 403, "tier")
    assert make_key(world.client, AUTH, org_id=a.id, tier="unlimited")["tier"] == "unlimited"


def test_keys_made_by_a_limited_admin_stay_within_its_allowlist_and_expiry(world: World) -> None:
    limited = make_key(
        world.client,
        AUTH,
        org_id=world.a.id,
        scopes=["admin"],
        models=["tiny-chat"],
        expires_in_days=1,
    )
    headers = bearer(limited["key"])
    made = make_key(world.client, headers)
    assert made["models"] == ["tiny-chat"] and made["expires_at"] == limited["expires_at"]
    assert_error(world.call("POST", KEYS, headers, json={"models": ["all-minilm-l6-v2"]}), 403)
    assert_error(world.call("POST", KEYS, headers, json={"expires_in_days": 2}), 403)
    assert make_key(world.client, headers, expires_in_days=0.5)["expires_at"] < made["expires_at"]


def test_keys_revoke_across_organizations(world: World) -> None:
    a, b = world.a, world.b
    foreign = world.call("DELETE", f"{KEYS}/{b.user_key_id}", a.admin)
    assert_error(foreign, 404)
    missing = world.call("DELETE", f"{KEYS}/key_doesnotexist", a.admin)
    assert missing.json()["error"]["code"] == foreign.json()["error"]["code"]
    assert world.call("POST", CHAT, b.user, json=HELLO).status_code == 200
    own = make_key(world.client, a.admin)
    revoked = world.call("DELETE", f"{KEYS}/{own['id']}", a.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert world.call("POST", CHAT, bearer(own["key"]), json=HELLO).status_code == 401
    assert world.call("DELETE", f"{KEYS}/{b.user_key_id}", AUTH).status_code == 200
    assert world.call("POST", CHAT, b.user, json=HELLO).status_code == 401
    # An operator's key in A's organization is above A's admin: it stays.
    operator = make_key(world.client, AUTH, org_id=a.id, scopes=["operator"])
    above = world.call("DELETE", f"{KEYS}/{operator['id']}", a.admin)
    assert_error(above, 403, "scopes")
    assert world.call("GET", ORGS, bearer(operator["key"])).status_code == 200


def test_tiers_are_the_operators(world: World) -> None:
    path = "/v1/admin/tiers/default"
    assert_error(world.call("PUT", path, world.a.admin, json={"requests_per_minute": 1}), 403)
    assert_error(world.call("PUT", "/v1/admin/tiers/mine", world.a.admin, json={}), 403)
    # Nothing was stored: the default tier still lets the admin's organization run.
    for _ in range(3):
        assert world.call("POST", CHAT, world.a.user, json=HELLO).status_code == 200
    assert world.call("PUT", "/v1/admin/tiers/mine", AUTH, json={}).status_code == 200


def test_usage_across_organizations(world: World) -> None:
    a, b = world.a, world.b
    by_org = {"group_by": "org_id"}
    everyone = world.call("GET", USAGE, AUTH, params=by_org).json()["data"]
    assert {a.id, b.id} <= {row["org_id"] for row in everyone}
    of_b = world.call("GET", USAGE, AUTH, params={**by_org, "org_id": b.id}).json()["data"]
    assert [row["org_id"] for row in of_b] == [b.id]
    own = world.call("GET", USAGE, a.admin, params=by_org)
    assert own.status_code == 200
    assert [row["org_id"] for row in own.json()["data"]] == [a.id]
    by_key = {"group_by": "key_id", "key_id": a.user_key_id}
    mine = world.call("GET", USAGE, a.admin, params=by_key).json()["data"]
    assert [row["key_id"] for row in mine] == [a.user_key_id]
    assert_error(world.call("GET", USAGE, a.admin, params={"org_id": b.id}), 404, "org_id")
    foreign_key = {"key_id": b.user_key_id}
    assert_error(world.call("GET", USAGE, a.admin, params=foreign_key), 404, "key_id")
    theirs = world.call("GET", USAGE, AUTH, params={**foreign_key, "group_by": "key_id"})
    assert [row["key_id"] for row in theirs.json()["data"]] == [b.user_key_id]


COVERED = {
    ("GET", ORGS): test_organizations_list_shows_an_admin_its_own,
    ("POST", ORGS): test_organizations_create_is_the_operators,
    ("GET", KEYS): test_keys_list_across_organizations,
    ("POST", KEYS): test_keys_create_across_organizations,
    ("DELETE", KEYS + "/{key_id}"): test_keys_revoke_across_organizations,
    ("PUT", "/v1/admin/tiers/{name}"): test_tiers_are_the_operators,
    ("GET", USAGE): test_usage_across_organizations,
}


# --- routes beside /v1/admin -----------------------------------------------------------


def test_own_usage_is_the_calling_keys_under_both_roles(world: World) -> None:
    for headers in (AUTH, world.a.admin, world.a.user):
        response = world.call("GET", "/v1/usage", headers, params={"group_by": "model"})
        assert response.status_code == 200
        key_id = response.json()["key_id"]
        assert key_id not in (world.b.user_key_id, world.b.admin_key_id)
    of_user = world.call("GET", "/v1/usage", world.a.user).json()
    assert of_user["key_id"] == world.a.user_key_id and of_user["data"]


def test_metrics_are_the_operators(world: World) -> None:
    assert world.call("GET", "/metrics", AUTH).status_code == 200
    assert_error(world.call("GET", "/metrics", world.a.admin), 403)
    assert_error(world.call("GET", "/metrics", world.a.user), 403)
    metrics = make_key(world.client, AUTH, org_id=world.a.id, scopes=["metrics"])
    assert world.call("GET", "/metrics", bearer(metrics["key"])).status_code == 200


def test_an_org_admin_of_b_cannot_reach_as_conversations_files_or_batches(
    world: World,
) -> None:
    a, b = world.a, world.b
    user_a = TestClient(world.client.app, headers=a.user)
    conversation = user_a.post(
        "/v1/conversations", json={"items": [{"role": "user", "content": "x"}]}
    ).json()
    items = f"/v1/conversations/{conversation['id']}/items"
    item_id = user_a.get(items).json()["data"][0]["id"]
    file = upload(user_a, jsonl([chat_line("one")]))
    batch = create_batch(user_a, file["id"])
    # The way in that was open: a key for A made by B's admin.
    assert_error(world.call("POST", KEYS, b.admin, json={"org_id": a.id}), 404)
    for path in (
        f"/v1/conversations/{conversation['id']}",
        f"/v1/conversations/{conversation['id']}/messages",
        items,
        f"{items}/{item_id}",
        f"/v1/files/{file['id']}",
        f"/v1/files/{file['id']}/content",
        f"/v1/batches/{batch['id']}",
    ):
        assert_error(world.call("GET", path, b.admin), 404)
        assert world.call("GET", path, a.user).status_code == 200, path
    for path in ("/v1/conversations", "/v1/files", "/v1/batches"):
        assert world.call("GET", path, b.admin).json()["data"] == []


def test_the_bootstrap_key_is_the_operator(client: TestClient) -> None:
    bootstrap = [k for k in client.get(KEYS).json()["data"] if k["name"] == "bootstrap"]
    assert len(bootstrap) == 1 and "operator" in bootstrap[0]["scopes"]


# --- the tier order --------------------------------------------------------------------


CAP_5 = ModelLimits(tokens_per_minute=5)


@pytest.mark.parametrize(
    ("limits", "ceiling", "within"),
    [
        (TierLimits(), TierLimits(), True),
        (TierLimits(requests_per_minute=5), TierLimits(), True),
        (TierLimits(), TierLimits(requests_per_minute=5), False),
        (TierLimits(tokens_per_month=9), TierLimits(tokens_per_month=10), True),
        (TierLimits(tokens_per_month=11), TierLimits(tokens_per_month=10), False),
        # A model's cap is met by the tier's own limit for it or by its overall limit.
        (
            TierLimits(models={"m": ModelLimits(tokens_per_minute=5)}),
            TierLimits(models={"m": ModelLimits(tokens_per_minute=5)}),
            True,
        ),
        (
            TierLimits(tokens_per_minute=3),
            TierLimits(models={"m": ModelLimits(tokens_per_minute=5)}),
            True,
        ),
        (TierLimits(), TierLimits(models={"m": ModelLimits(tokens_per_minute=5)}), False),
        (
            TierLimits(models={"m": ModelLimits(requests_per_minute=6)}),
            TierLimits(models={"m": ModelLimits(requests_per_minute=5)}),
            False,
        ),
    ],
)
def test_tier_within(limits: TierLimits, ceiling: TierLimits, within: bool) -> None:
    assert tier_within(limits, ceiling) is within
