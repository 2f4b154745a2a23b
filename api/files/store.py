"""Where the bytes of files live, behind a small Protocol: a local folder or S3.

Keys are relative names chosen by the caller (``file-...``); writing the same key twice
replaces the object, which lets a batch's finalization be repeated after a crash.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol

from api.settings import FileSettings


class FileStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class LocalFileStore:
    """Files in one folder; written to a temporary name and renamed, never half-written."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"bad file key {key!r}")
        return self._root / key


class S3FileStore:
    """Objects in an S3-compatible bucket (AWS, MinIO, Ceph ...), through boto3 in a thread."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._client.put_object, Bucket=self._bucket, Key=self._prefix + key, Body=data
        )

    async def get(self, key: str) -> bytes:
        response = await asyncio.to_thread(
            self._client.get_object, Bucket=self._bucket, Key=self._prefix + key
        )
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(
            self._client.delete_object, Bucket=self._bucket, Key=self._prefix + key
        )


def build_file_store(settings: FileSettings) -> FileStore:
    if settings.backend == "local":
        return LocalFileStore(settings.local_dir)
    import boto3  # only S3 deployments need it

    def secret(value: Any) -> str | None:
        return None if value is None else str(value.get_secret_value())

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=secret(settings.s3_access_key_id),
        aws_secret_access_key=secret(settings.s3_secret_access_key),
    )
    assert settings.s3_bucket is not None
    return S3FileStore(client, settings.s3_bucket, settings.s3_prefix)
