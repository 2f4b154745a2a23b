"""Stored responses (``/v1/responses``) and the stream events of background ones.

Every read and write that a client drives is scoped by organization: another
organization's response is missing, exactly like one that does not exist. Any replica can serve
a stored response, continue it (``previous_response_id``) or replay its events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage.response_tables import response_events, responses
from api.storage.time import as_utc, utcnow

# Statuses a response can still leave; every other one is final.
RUNNING = ("queued", "in_progress")
_MUTABLE = (
    "status",
    "output",
    "usage",
    "error",
    "incomplete_details",
    "completed_at",
    "lease_owner",
    "lease_expires",
)


@dataclass(slots=True)
class ResponseRecord:
    """One response, as stored and as it is being generated."""

    id: str
    org_id: str
    key_id: str
    model: str
    status: str
    background: bool
    # The request's parameters that the response object echoes (instructions, tools...).
    params: dict[str, Any]
    # Earlier turns' items, then this request's input (the last ``input_count`` of them).
    context: list[dict[str, Any]]
    input_count: int
    created_at: datetime
    expires_at: datetime
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    completed_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


async def insert(db: AsyncEngine, record: ResponseRecord) -> None:
    async with db.begin() as conn:
        await conn.execute(responses.insert().values(record.values()))


async def save(db: AsyncEngine, record: ResponseRecord) -> bool:
    """Write the record's progress unless it was cancelled meanwhile (False then)."""
    values = {name: getattr(record, name) for name in _MUTABLE}
    query = update(responses).where(responses.c.id == record.id, responses.c.status != "cancelled")
    async with db.begin() as conn:
        changed = (await conn.execute(query.values(values))).rowcount
    return bool(changed)


async def get(db: AsyncEngine, org_id: str, response_id: str) -> ResponseRecord | None:
    query = select(responses).where(responses.c.id == response_id, responses.c.org_id == org_id)
    async with db.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else _record(row)


async def delete_response(db: AsyncEngine, org_id: str, response_id: str) -> bool:
    async with db.begin() as conn:
        owned = (
            await conn.execute(
                select(responses.c.id).where(
                    responses.c.id == response_id, responses.c.org_id == org_id
                )
            )
        ).first()
        if owned is None:
            return False
        # Explicit: SQLite enforces the cascade only with its foreign_keys pragma on.
        await conn.execute(
            delete(response_events).where(response_events.c.response_id == response_id)
        )
        await conn.execute(delete(responses).where(responses.c.id == response_id))
    return True


async def cancel(db: AsyncEngine, org_id: str, response_id: str) -> ResponseRecord | None:
    """Mark a running background response cancelled; None when it is not the caller's.

    The process running it sees the status at its next lease renewal and stops.
    """
    now = utcnow()
    async with db.begin() as conn:
        await conn.execute(
            update(responses)
            .where(
                responses.c.id == response_id,
                responses.c.org_id == org_id,
                responses.c.background.is_(True),
                responses.c.status.in_(RUNNING),
            )
            .values(status="cancelled", completed_at=now, lease_owner=None, lease_expires=None)
        )
    return await get(db, org_id, response_id)


async def renew_lease(db: AsyncEngine, response_id: str, owner: str, until: datetime) -> bool:
    """Extend the lease of a running response; False when it is no longer running here
    (cancelled, or ended as abandoned by another replica)."""
    query = (
        update(responses)
        .where(
            responses.c.id == response_id,
            responses.c.lease_owner == owner,
            responses.c.status.in_(RUNNING),
        )
        .values(lease_expires=until)
    )
    async with db.begin() as conn:
        return bool((await conn.execute(query)).rowcount)


async def fail_abandoned(db: AsyncEngine, now: datetime, error: dict[str, Any]) -> int:
    """End as failed every running response whose lease ran out (its process died)."""
    query = (
        update(responses)
        .where(responses.c.status.in_(RUNNING), responses.c.lease_expires < now)
        .values(
            status="failed", error=error, completed_at=now, lease_owner=None, lease_expires=None
        )
    )
    async with db.begin() as conn:
        return int((await conn.execute(query)).rowcount)


async def purge_expired(db: AsyncEngine, now: datetime, limit: int = 500) -> int:
    """Delete up to ``limit`` responses (with their events) past their retention."""
    async with db.begin() as conn:
        ids = (
            (
                await conn.execute(
                    select(responses.c.id)
                    .where(responses.c.expires_at < now, responses.c.status.not_in(RUNNING))
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return 0
        await conn.execute(delete(response_events).where(response_events.c.response_id.in_(ids)))
        await conn.execute(delete(responses).where(responses.c.id.in_(ids)))
    return len(ids)


async def append_events(db: AsyncEngine, response_id: str, events: list[tuple[int, str]]) -> None:
    if not events:
        return
    rows = [
        {"response_id": response_id, "sequence_number": number, "event": text}
        for number, text in events
    ]
    async with db.begin() as conn:
        await conn.execute(response_events.insert(), rows)


async def events_after(
    db: AsyncEngine, response_id: str, after: int, limit: int = 1000
) -> list[tuple[int, str]]:
    table = response_events
    query = (
        select(table.c.sequence_number, table.c.event)
        .where(table.c.response_id == response_id, table.c.sequence_number > after)
        .order_by(table.c.sequence_number)
        .limit(limit)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [(int(row[0]), str(row[1])) for row in rows]


def _record(row: Row[Any]) -> ResponseRecord:
    values = dict(row._mapping)
    for name in ("created_at", "expires_at", "completed_at", "lease_expires"):
        values[name] = as_utc(values[name])
    return ResponseRecord(**values)
