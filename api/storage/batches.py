"""Batches in the database: the batch rows and their status transitions.

Every transition is a conditional update (``WHERE status IN (...)``), so replicas and a
restarted worker never move a batch twice; the per-line state is in ``batch_lines``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage.files import FileRecord
from api.storage.pages import page_after
from api.storage.tables import batch_lines, batches, files
from api.storage.time import as_utc, utcnow

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_MOMENTS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass(frozen=True, slots=True)
class Counts:
    total: int = 0
    completed: int = 0
    failed: int = 0

    def public(self) -> dict[str, int]:
        return {"total": self.total, "completed": self.completed, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    org_id: str
    key_id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    metadata: dict[str, str] | None
    errors: dict[str, Any] | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    created_at: datetime
    expires_at: datetime
    in_progress_at: datetime | None = None
    finalizing_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    expired_at: datetime | None = None
    cancelling_at: datetime | None = None
    cancelled_at: datetime | None = None

    def public(self, counts: Counts) -> dict[str, Any]:
        """OpenAI's ``batch`` object; ``request_counts`` is also the progress."""
        moments = {name: _epoch(getattr(self, name)) for name in _MOMENTS}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": _epoch(self.created_at),
            "expires_at": _epoch(self.expires_at),
            **moments,
            "request_counts": counts.public(),
            "metadata": self.metadata,
        }

    def row(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


class BatchStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: BatchRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(batches.insert().values(record.row()))

    async def get(self, batch_id: str, org_id: str | None = None) -> BatchRecord | None:
        query = select(batches).where(batches.c.id == batch_id)
        if org_id is not None:
            query = query.where(batches.c.org_id == org_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    async def page(self, org_id: str, after: str | None, limit: int) -> list[BatchRecord]:
        async with self._engine.connect() as conn:
            query = await page_after(conn, batches, [batches.c.org_id == org_id], after)
            if query is None:
                return []
            rows = (await conn.execute(query.limit(limit))).all()
        return [_record(row) for row in rows]

    async def with_status(self, statuses: Sequence[str], limit: int = 100) -> list[BatchRecord]:
        query = (
            select(batches)
            .where(batches.c.status.in_(statuses))
            .order_by(batches.c.created_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]

    async def counts(self, records: Sequence[BatchRecord]) -> dict[str, Counts]:
        """Completed and failed lines of each batch, counted from the lines themselves."""
        ids = [record.id for record in records]
        query = (
            select(batch_lines.c.batch_id, batch_lines.c.status, func.count())
            .where(batch_lines.c.batch_id.in_(ids))
            .group_by(batch_lines.c.batch_id, batch_lines.c.status)
        )
        found: dict[str, dict[str, int]] = {batch_id: {} for batch_id in ids}
        if ids:
            async with self._engine.connect() as conn:
                for batch_id, status, count in (await conn.execute(query)).all():
                    found[batch_id][status] = count
        return {
            record.id: Counts(
                total=record.total,
                completed=found[record.id].get("done", 0),
                failed=found[record.id].get("failed", 0),
            )
            for record in records
        }

    async def transition(
        self, batch_id: str, allowed: Sequence[str], status: str, **values: Any
    ) -> bool:
        """Move the batch to ``status`` if it is in one of ``allowed``; stamps ``<status>_at``."""
        moment = f"{status}_at"
        if moment in _MOMENTS:
            values.setdefault(moment, utcnow())
        statement = (
            update(batches)
            .where(batches.c.id == batch_id, batches.c.status.in_(allowed))
            .values(status=status, **values)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def finish(
        self, batch_id: str, status: str, written: Sequence[FileRecord], **values: Any
    ) -> bool:
        """Register the output files and end the batch, in one transaction.

        The files' ids are derived from the batch, so a finalization repeated after a crash
        replaces them instead of adding more.
        """
        try:
            async with self._engine.begin() as conn:
                ids = [record.id for record in written]
                await conn.execute(delete(files).where(files.c.id.in_(ids)))
                for record in written:
                    await conn.execute(files.insert().values(record.row()))
                result = await conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id, batches.c.status == "finalizing")
                    .values(status=status, **{f"{status}_at": utcnow()}, **values)
                )
                if not result.rowcount:
                    raise _AlreadyFinished
        except _AlreadyFinished:
            return False
        return True


class _AlreadyFinished(Exception):
    """Another worker ended the batch first: roll this finalization back."""


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _record(row: Row[Any]) -> BatchRecord:
    values = dict(row._mapping)
    for name in ("created_at", "expires_at", *_MOMENTS):
        values[name] = as_utc(values[name])
    return BatchRecord(**values)
