"""Admin routes and commands refuse tiers that do not exist and models that are not served."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from api import cli

ORGS = "/v1/admin/organizations"
KEYS = "/v1/admin/keys"


def org_id(client: TestClient, name: str = "acme", **fields: object) -> str:
    created = client.post(ORGS, json={"name": name, **fields})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def assert_400(response: object, param: str) -> None:
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize("tier", ["gold", "Default", "default "])
def test_an_unknown_tier_is_refused_for_organizations_and_keys(
    client: TestClient, tier: str
) -> None:
    assert_400(client.post(ORGS, json={"name": "acme", "tier": tier}), "tier")
    assert all(org["name"] != "acme" for org in client.get(ORGS).json()["data"])
    assert_400(client.post(KEYS, json={"org_id": org_id(client), "tier": tier}), "tier")


def test_settings_tiers_stored_tiers_and_the_default_are_accepted(client: TestClient) -> None:
    assert client.get(ORGS).status_code == 200
    default = client.post(ORGS, json={"name": "plain"}).json()
    assert default["tier"] == "default"
    owner = org_id(client, tier="free")
    assert client.post(KEYS, json={"org_id": owner, "tier": "unlimited"}).status_code == 201
    assert client.put("/v1/admin/tiers/gold", json={"requests_per_minute": 5}).status_code == 200
    assert client.post(KEYS, json={"org_id": owner, "tier": "gold"}).status_code == 201
    assert client.post(ORGS, json={"name": "golden", "tier": "gold"}).status_code == 201


@pytest.mark.parametrize("models", [["nope"], ["tiny-chat", "gpt-4o"], [""]])
def test_an_allowlist_naming_unknown_models_is_refused(
    client: TestClient, models: list[str]
) -> None:
    assert_400(client.post(KEYS, json={"org_id": org_id(client), "models": models}), "models")


def test_an_allowlist_of_ids_aliases_and_the_moderation_model_is_accepted(
    client: TestClient,
) -> None:
    models = ["tiny-chat", "text-embedding-minilm", "pattern-filter"]
    created = client.post(KEYS, json={"org_id": org_id(client), "models": models})
    assert created.status_code == 201, created.text
    assert (
        client.post(KEYS, json={"org_id": org_id(client, "empty"), "models": []}).status_code == 201
    )


def test_tier_limits_for_unknown_models_are_refused(client: TestClient) -> None:
    path = "/v1/admin/tiers/gold"
    assert_400(client.put(path, json={"models": {"nope": {"tokens_per_minute": 9}}}), "models")
    known = client.put(path, json={"models": {"tiny-chat": {"tokens_per_minute": 9}}})
    assert known.status_code == 200


def test_the_cli_refuses_them_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["orgs", "create", "acme", "--tier", "gold"]) == 2
    assert "No tier 'gold'" in capsys.readouterr().err
    assert cli.main(["orgs", "create", "acme"]) == 0
    assert cli.main(["keys", "create", "--org", "acme", "--tier", "gold"]) == 2
    assert cli.main(["keys", "create", "--org", "acme", "--models", "tiny-chat,nope"]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["tiers", "set", "gold", '{"models": {"nope": {}}}']) == 2
    assert cli.main(["keys", "create", "--org", "acme", "--models", "tiny-chat"]) == 0
