"""The lines of batches: loading, leasing, storing results, reading them back in order.

A line is ``pending`` until a worker leases it (``running``, with an owner and an expiry the
worker keeps renewing), then ``done`` or ``failed`` with its output line stored by the same
single UPDATE that checks the lease: a result is committed exactly once, by the lease holder.
A line whose worker died is leased again once its lease has expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage.tables import batch_lines, batches
from api.storage.time import utcnow

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass(frozen=True, slots=True)
class NewLine:
    """A parsed input line: a request to run, or (malformed) its error output already."""

    index: int
    custom_id: str | None
    request: dict[str, Any] | None
    result: str | None = None


@dataclass(frozen=True, slots=True)
class LeasedLine:
    batch_id: str
    index: int
    custom_id: str
    request: dict[str, Any]


class LineStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, batch_id: str, lines: Sequence[NewLine]) -> bool:
        """Store the parsed lines and start the batch, in one transaction (False: lost race)."""
        rows = [
            {
                "batch_id": batch_id,
                "line_index": line.index,
                "custom_id": line.custom_id,
                "request": line.request,
                "status": PENDING if line.result is None else FAILED,
                "attempts": 0,
                "result": line.result,
            }
            for line in lines
        ]
        async with self._engine.begin() as conn:
            started = await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.status == "validating")
                .values(status="in_progress", in_progress_at=utcnow(), total=len(rows))
            )
            if not started.rowcount:
                return False
            for start in range(0, len(rows), 1000):
                await conn.execute(batch_lines.insert(), rows[start : start + 1000])
        return True

    async def lease(
        self, batch_id: str, owner: str, limit: int, lease_s: float
    ) -> list[LeasedLine]:
        """Lease up to ``limit`` lines (pending, or running under an expired lease)."""
        now = utcnow()
        claimable = and_(
            batch_lines.c.batch_id == batch_id,
            or_(
                batch_lines.c.status == PENDING,
                and_(batch_lines.c.status == RUNNING, batch_lines.c.lease_expires < now),
            ),
        )
        async with self._engine.begin() as conn:
            picked = (
                (
                    await conn.execute(
                        select(batch_lines.c.line_index)
                        .where(claimable)
                        .order_by(batch_lines.c.line_index)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            if not picked:
                return []
            # The condition is checked again by the UPDATE: a line another worker leased in
            # between is not taken twice.
            await conn.execute(
                update(batch_lines)
                .where(claimable, batch_lines.c.line_index.in_(picked))
                .values(
                    status=RUNNING,
                    lease_owner=owner,
                    lease_expires=now + timedelta(seconds=lease_s),
                    attempts=batch_lines.c.attempts + 1,
                )
            )
            rows = (
                await conn.execute(
                    select(batch_lines.c.line_index, batch_lines.c.custom_id, batch_lines.c.request)
                    .where(
                        batch_lines.c.batch_id == batch_id,
                        batch_lines.c.line_index.in_(picked),
                        batch_lines.c.status == RUNNING,
                        batch_lines.c.lease_owner == owner,
                    )
                    .order_by(batch_lines.c.line_index)
                )
            ).all()
        return [LeasedLine(batch_id, row[0], row[1] or "", row[2]) for row in rows]

    async def renew(self, owner: str, lease_s: float) -> None:
        """Extend every lease ``owner`` holds (the worker's heartbeat)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(batch_lines)
                .where(batch_lines.c.lease_owner == owner, batch_lines.c.status == RUNNING)
                .values(lease_expires=utcnow() + timedelta(seconds=lease_s))
            )

    async def release(self, owner: str) -> None:
        """Give back unfinished leases (a graceful stop): they run again at once elsewhere."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(batch_lines)
                .where(batch_lines.c.lease_owner == owner, batch_lines.c.status == RUNNING)
                .values(status=PENDING, lease_owner=None, lease_expires=None)
            )

    async def finish(self, line: LeasedLine, owner: str, succeeded: bool, result: str) -> bool:
        """Store the line's output and end it, only while ``owner`` still holds the lease."""
        async with self._engine.begin() as conn:
            outcome = await conn.execute(
                update(batch_lines)
                .where(
                    batch_lines.c.batch_id == line.batch_id,
                    batch_lines.c.line_index == line.index,
                    batch_lines.c.status == RUNNING,
                    batch_lines.c.lease_owner == owner,
                )
                .values(
                    status=DONE if succeeded else FAILED,
                    result=result,
                    lease_owner=None,
                    lease_expires=None,
                )
            )
        return bool(outcome.rowcount)

    async def unfinished(self, batch_id: str, live_only: bool = False) -> int:
        """Lines still to run (``live_only``: only those running under a live lease)."""
        if live_only:
            condition = and_(
                batch_lines.c.status == RUNNING, batch_lines.c.lease_expires >= utcnow()
            )
        else:
            condition = batch_lines.c.status.in_((PENDING, RUNNING))
        query = select(func.count()).where(batch_lines.c.batch_id == batch_id, condition)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def results(self, batch_id: str) -> list[tuple[str, str]]:
        """(status, output line) of every ended line, in input order."""
        query = (
            select(batch_lines.c.status, batch_lines.c.result)
            .where(
                batch_lines.c.batch_id == batch_id,
                batch_lines.c.status.in_((DONE, FAILED)),
            )
            .order_by(batch_lines.c.line_index)
        )
        async with self._engine.connect() as conn:
            return [(row[0], row[1]) for row in (await conn.execute(query)).all()]
