"""Organization admins against the real stack: the admin of B cannot reach A.

The stack's key is the bootstrap key, the platform operator. It makes organizations A and B,
an inference key for A and an admin key for B. A's key holds a real conversation with the
model, a file and usage; B's admin then tries every way in that used to be open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

Client = httpx.Client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def operator(stack: Stack) -> Iterator[Client]:
    with httpx.Client(base_url=stack.api_url, headers=bearer(stack.api_key), timeout=120) as c:
        yield c


def tenant(operator: Client, name: str, scopes: list[str]) -> tuple[str, dict[str, Any]]:
    org = operator.post("/v1/admin/organizations", json={"name": name})
    assert org.status_code == 201, org.text
    key = operator.post("/v1/admin/keys", json={"org_id": org.json()["id"], "scopes": scopes})
    assert key.status_code == 201, key.text
    return org.json()["id"], key.json()


def usage_of(client: Client, **params: str) -> list[dict[str, Any]]:
    """The admin usage rows, once the recorder (flushing every second) has written them."""
    deadline = time.monotonic() + 15
    while True:
        rows: list[dict[str, Any]] = client.get("/v1/admin/usage", params=params).json()["data"]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def test_an_org_admin_of_b_cannot_read_as_conversations_files_or_usage(
    stack: Stack, operator: Client
) -> None:
    suffix = str(time.time_ns())
    org_a, user_a = tenant(operator, f"a-{suffix}", ["inference"])
    org_b, admin_b = tenant(operator, f"b-{suffix}", ["admin"])
    a = httpx.Client(base_url=stack.api_url, headers=bearer(user_a["key"]), timeout=120)
    b = httpx.Client(base_url=stack.api_url, headers=bearer(admin_b["key"]), timeout=120)
    with a, b:
        conversation = a.post("/v1/conversations", json={"model": "tiny-chat"}).json()
        turn = a.post(
            f"/v1/conversations/{conversation['id']}/messages",
            json={"content": "What is the capital of France?", "max_tokens": 8},
        )
        assert turn.status_code == 200 and turn.json()["usage"]["completion_tokens"] > 0
        file = a.post(
            "/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "batch"}
        ).json()
        assert usage_of(operator, org_id=org_a), "A's usage reached the database"

        # The way in that was open: B's admin makes itself a key for A.
        minted = b.post("/v1/admin/keys", json={"org_id": org_a, "scopes": ["inference"]})
        assert minted.status_code == 404 and minted.json()["error"]["param"] == "org_id"
        assert b.post("/v1/admin/keys", json={"scopes": ["operator"]}).status_code == 403
        for path in (
            f"/v1/conversations/{conversation['id']}",
            f"/v1/conversations/{conversation['id']}/messages",
            f"/v1/files/{file['id']}",
            f"/v1/files/{file['id']}/content",
        ):
            assert b.get(path).status_code == 404, path
            assert a.get(path).status_code == 200, path
        for params in ({"org_id": org_a}, {"key_id": user_a["id"]}):
            refused = b.get("/v1/admin/usage", params=params)
            assert refused.status_code == 404, params
        own = b.get("/v1/admin/usage", params={"group_by": "org_id"}).json()["data"]
        assert {row["org_id"] for row in own} <= {org_b}
        assert b.get("/v1/admin/keys", params={"org_id": org_a}).status_code == 404
        assert [o["id"] for o in b.get("/v1/admin/organizations").json()["data"]] == [org_b]
        assert b.delete(f"/v1/admin/keys/{user_a['id']}").status_code == 404
        assert a.get(f"/v1/files/{file['id']}").status_code == 200, "A's key still works"
        assert b.put("/v1/admin/tiers/default", json={}).status_code == 403
        assert b.get("/metrics").status_code == 403

        # The operator reaches both.
        assert [row["org_id"] for row in usage_of(operator, org_id=org_a, group_by="org_id")] == [
            org_a
        ]
        assert operator.get("/metrics").status_code == 200
