"""Files as the routes and the batch worker see them: metadata and bytes together."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from api.errors import NotFoundError
from api.files.store import FileStore
from api.storage.files import FileRecord, FileRecords
from api.storage.time import utcnow


@dataclass(frozen=True, slots=True)
class Files:
    records: FileRecords
    blobs: FileStore

    async def create(
        self, org_id: str, key_id: str, filename: str, purpose: str, data: bytes
    ) -> FileRecord:
        file_id = f"file-{secrets.token_hex(12)}"
        record = self.describe(file_id, org_id, key_id, filename, purpose, data)
        # Bytes first: a crash in between leaves an unreferenced blob, never a dangling row.
        await self.blobs.put(record.storage_key, data)
        await self.records.add(record)
        return record

    @staticmethod
    def describe(
        file_id: str, org_id: str, key_id: str, filename: str, purpose: str, data: bytes
    ) -> FileRecord:
        return FileRecord(
            id=file_id,
            org_id=org_id,
            key_id=key_id,
            filename=filename[:255],
            purpose=purpose,
            bytes=len(data),
            storage_key=file_id,
            created_at=utcnow(),
        )

    async def owned(self, file_id: str, org_id: str) -> FileRecord:
        """The organization's file, or 404 (another organization's file does not exist)."""
        record = await self.records.get(file_id, org_id)
        if record is None:
            raise NotFoundError(f"No such File object: {file_id}", param="file_id")
        return record

    async def content(self, record: FileRecord) -> bytes:
        return await self.blobs.get(record.storage_key)

    async def delete(self, record: FileRecord) -> None:
        await self.records.delete(record.id)
        await self.blobs.delete(record.storage_key)
