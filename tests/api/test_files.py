from __future__ import annotations

import asyncio
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from api.files.store import LocalFileStore, S3FileStore, build_file_store
from api.settings import FileSettings
from tests.api.batching import upload


def test_upload_retrieve_content_list_delete(client: TestClient) -> None:
    created = upload(client, b'{"a": 1}\n')
    assert created["object"] == "file"
    assert created["bytes"] == 9
    assert created["purpose"] == "batch"
    assert created["filename"] == "input.jsonl"
    file_id = created["id"]
    assert client.get(f"/v1/files/{file_id}").json() == created
    assert client.get(f"/v1/files/{file_id}/content").content == b'{"a": 1}\n'
    listing = client.get("/v1/files").json()
    assert [item["id"] for item in listing["data"]] == [file_id]
    deleted = client.delete(f"/v1/files/{file_id}").json()
    assert deleted == {"id": file_id, "object": "file", "deleted": True}
    assert client.get(f"/v1/files/{file_id}").status_code == 404


def test_upload_needs_purpose_batch_and_a_file(client: TestClient) -> None:
    response = client.post("/v1/files", files={"file": ("x", b"{}")}, data={"purpose": "other"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "purpose"
    response = client.post("/v1/files", data={"purpose": "batch"}, files={"other": ("x", b"")})
    assert response.status_code == 400
    assert client.post("/v1/files", json={"purpose": "batch"}).status_code == 400


def test_upload_over_the_limit_is_413(monkeypatch: pytest.MonkeyPatch, backend: object) -> None:
    from api.app import create_app
    from api.settings import Settings
    from tests.api.keys import AUTH

    monkeypatch.setenv("API_FILES__MAX_UPLOAD_BYTES", "10")
    app = create_app(Settings(), backend_factory=lambda _: backend)  # type: ignore[arg-type,return-value]
    with TestClient(app, headers=AUTH) as client:
        response = client.post(
            "/v1/files", files={"file": ("x", b"x" * 100)}, data={"purpose": "batch"}
        )
    assert response.status_code == 413


def test_pagination_with_after(client: TestClient) -> None:
    ids = [upload(client, f"{i}\n".encode())["id"] for i in range(3)]
    first = client.get("/v1/files", params={"limit": 2}).json()
    assert [item["id"] for item in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    rest = client.get("/v1/files", params={"limit": 2, "after": first["last_id"]}).json()
    assert [item["id"] for item in rest["data"]] == [ids[0]]
    assert rest["has_more"] is False
    assert client.get("/v1/files", params={"limit": 0}).status_code == 400


def test_unknown_file_is_404(client: TestClient) -> None:
    for path in ("/v1/files/file-nope", "/v1/files/file-nope/content"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_local_store_round_trip_and_refuses_paths(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)

    async def scenario() -> bytes:
        await store.put("file-1", b"data")
        await store.put("file-1", b"again")  # replaced, as finalization after a crash needs
        return await store.get("file-1")

    assert asyncio.run(scenario()) == b"again"
    with pytest.raises(ValueError):
        asyncio.run(store.put("../escape", b""))


def test_s3_store_through_an_s3_api() -> None:
    settings = FileSettings(
        backend="s3", s3_bucket="gw-files", s3_region="us-east-1", s3_prefix="t/"
    )
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="gw-files")
        store = build_file_store(settings)
        assert isinstance(store, S3FileStore)

        async def scenario() -> bytes:
            await store.put("file-2", b"jsonl")
            data = await store.get("file-2")
            await store.delete("file-2")
            return data

        assert asyncio.run(scenario()) == b"jsonl"
        keys = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="gw-files")
        assert keys["KeyCount"] == 0
