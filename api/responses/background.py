"""Background responses: run in a task of the process that accepted them, durable in the DB.

The record is stored before the request returns, holding a lease of this process that the
task renews while it runs. Its events are kept in memory for this process's streams and
written to ``response_events`` (every ``event_flush_s``) for any other replica's. A
cancellation (``POST .../cancel`` on any replica) is seen at the next renewal. A process that
dies leaves its leases to run out; the sweeper of every replica (at start-up, then every
``lease_s / 2``) ends such responses as failed, and purges expired ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime, timedelta

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from api.chat.run import ChatRun
from api.ids import unique_hex
from api.responses.finish import keep
from api.responses.generate import lifecycle, response_events
from api.responses.output import Event
from api.responses.stream import numbered, sse_frame
from api.settings import ResponseSettings
from api.storage import responses as store
from api.storage.responses import RUNNING, ResponseRecord
from api.storage.time import utcnow

logger = logging.getLogger(__name__)

ABANDONED = {
    "code": "server_error",
    "message": "The server running this background response stopped before it ended.",
}
SHUT_DOWN = {
    "code": "server_error",
    "message": "The server running this background response shut down before it ended.",
}
# Awaited with the record and its run once a background response has ended (usage records,
# limits settled against its tokens).
Ended = Callable[[ResponseRecord, ChatRun], Awaitable[None]]


class LocalEvents:
    """The numbered events of one response running here, for the streams that follow it."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []
        self.ended = False
        self._changed = asyncio.Condition()

    async def add(self, number: int, text: str) -> None:
        async with self._changed:
            self.events.append((number, text))
            self._changed.notify_all()

    async def end(self) -> None:
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    async def after(self, number: int) -> AsyncGenerator[tuple[int, str], None]:
        seen = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(self._beyond(seen))
                fresh, seen = self.events[seen:], len(self.events)
                ended = self.ended
            for entry in fresh:
                if entry[0] > number:
                    yield entry
            if ended and seen == len(self.events):
                return

    def _beyond(self, seen: int) -> Callable[[], bool]:
        return lambda: self.ended or len(self.events) > seen


class BackgroundRunner:
    def __init__(self, db: AsyncEngine, settings: ResponseSettings) -> None:
        self._db = db
        self._settings = settings
        self.owner = f"proc_{unique_hex(64)}"
        self.local: dict[str, LocalEvents] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        await self.sweep(purge=True)
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(
            *self._tasks.values(), self._sweeper or _done(), return_exceptions=True
        )

    async def submit(self, record: ResponseRecord, run: ChatRun, ended: Ended) -> None:
        """Store ``record`` with this process's lease and run it in a task."""
        record.lease_owner = self.owner
        record.lease_expires = self._lease_end()
        await store.insert(self._db, record)
        self.local[record.id] = LocalEvents()
        self._tasks[record.id] = asyncio.create_task(self._run(record, run, ended))

    def cancel_local(self, response_id: str) -> None:
        task = self._tasks.get(response_id)
        if task is not None:
            task.cancel()

    async def _run(self, record: ResponseRecord, run: ChatRun, ended: Ended) -> None:
        local = self.local[record.id]
        pending: list[tuple[int, str]] = []
        number = 0
        renewer = asyncio.create_task(self._renew(record, asyncio.current_task()))
        try:
            record.status = "in_progress"
            await store.save(self._db, record)
            opening = [lifecycle("created", record), lifecycle("in_progress", record)]
            events = response_events(run, record)
            flushed = time.monotonic()
            async for event in _chain(opening, events):
                text = orjson.dumps(numbered(event, number)).decode()
                await local.add(number, text)
                pending.append((number, text))
                number += 1
                if time.monotonic() - flushed >= self._settings.event_flush_s:
                    await store.append_events(self._db, record.id, pending)
                    pending, flushed = [], time.monotonic()
        except asyncio.CancelledError:
            record.completed_at = utcnow()
            if self._closing:
                record.status, record.error = "failed", dict(SHUT_DOWN)
            else:
                # No event says so (the SDK's stream events have none): followers' streams end.
                record.status = "cancelled"
        except Exception:
            logger.exception("background response %s failed", record.id)
            record.status, record.error = "failed", dict(ABANDONED)
            record.completed_at = utcnow()
        finally:
            renewer.cancel()
            record.lease_owner, record.lease_expires = None, None
            with anyio.CancelScope(shield=True):
                await store.append_events(self._db, record.id, pending)
                if record.status != "cancelled":
                    await keep(self._db, record, inserted=True)
                await local.end()
                self._tasks.pop(record.id, None)
                await ended(record, run)
            # Followers that are reading the local events still hold the object.
            self.local.pop(record.id, None)

    async def _renew(self, record: ResponseRecord, task: asyncio.Task[None] | None) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_s / 3)
            held = await store.renew_lease(self._db, record.id, self.owner, self._lease_end())
            if not held and task is not None:
                logger.info("background response %s was cancelled", record.id)
                task.cancel()
                return

    async def sweep(self, purge: bool = False) -> None:
        now = utcnow()
        failed = await store.fail_abandoned(self._db, now, ABANDONED)
        if failed:
            logger.warning("ended %d abandoned background responses as failed", failed)
        if purge:
            purged = await store.purge_expired(self._db, now)
            if purged:
                logger.info("purged %d expired responses", purged)

    async def _sweep_forever(self) -> None:
        interval = self._settings.lease_s / 2
        last_purge = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            purge = time.monotonic() - last_purge >= self._settings.purge_interval_s
            try:
                await self.sweep(purge)
            except Exception:
                logger.exception("sweeping responses failed")
                continue
            if purge:
                last_purge = time.monotonic()

    def _lease_end(self) -> datetime:
        return utcnow() + timedelta(seconds=self._settings.lease_s)


async def _chain(
    first: list[Event], rest: AsyncGenerator[Event, None]
) -> AsyncGenerator[Event, None]:
    for event in first:
        yield event
    try:
        async for event in rest:
            yield event
    finally:
        await rest.aclose()


async def _done() -> None:
    return None


async def follow(
    db: AsyncEngine, runner: BackgroundRunner, org_id: str, response_id: str, after: int
) -> AsyncGenerator[bytes, None]:
    """The events after ``after`` of a background response, as SSE frames, until it ends:
    from memory where it runs here, else from the database (polled)."""
    local = runner.local.get(response_id)
    if local is not None:
        async for _, text in local.after(after):
            yield _frame(text)
        return
    while True:
        found = await store.events_after(db, response_id, after)
        for number, text in found:
            after = number
            yield _frame(text)
        if found:
            continue
        record = await store.get(db, org_id, response_id)
        if record is None or record.status not in RUNNING:
            # Ended: what its process wrote last is in the database now.
            for _, text in await store.events_after(db, response_id, after):
                yield _frame(text)
            return
        await asyncio.sleep(0.1)


def _frame(text: str) -> bytes:
    return sse_frame(str(orjson.loads(text)["type"]), text.encode())
