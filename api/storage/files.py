"""File metadata in the database (the bytes are in a ``FileStore``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.storage.pages import page_after
from api.storage.tables import files
from api.storage.time import as_utc


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    org_id: str
    key_id: str
    filename: str
    purpose: str
    bytes: int
    storage_key: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """OpenAI's ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": int(self.created_at.timestamp()),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class FileRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: FileRecord, conn: AsyncConnection | None = None) -> None:
        if conn is not None:
            await conn.execute(files.insert().values(record.row()))
            return
        async with self._engine.begin() as own:
            await own.execute(files.insert().values(record.row()))

    async def get(self, file_id: str, org_id: str | None = None) -> FileRecord | None:
        query = select(files).where(files.c.id == file_id)
        if org_id is not None:
            query = query.where(files.c.org_id == org_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    async def page(
        self, org_id: str, after: str | None, limit: int, purpose: str | None = None
    ) -> list[FileRecord]:
        where: list[object] = [files.c.org_id == org_id]
        if purpose is not None:
            where.append(files.c.purpose == purpose)
        async with self._engine.connect() as conn:
            query = await page_after(conn, files, where, after)
            if query is None:
                return []
            rows = (await conn.execute(query.limit(limit))).all()
        return [_record(row) for row in rows]

    async def delete(self, file_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(files).where(files.c.id == file_id))


def _record(row: Row[Any]) -> FileRecord:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    return FileRecord(**values)
