"""The usage writer: off the response path, in batches, without losing records.

``record`` appends the record to this process's journal segment (a JSON line written through
to the OS, so it survives a crash of the process) and returns at once. A background task seals
the segment every ``flush_interval_s`` (or ``batch_size`` records), writes it to the database
in one transaction and only then deletes it. Segments left by a dead process are claimed (an
atomic rename, so only one replica wins) and replayed at start-up; the store skips records it
already has, so a replay never counts twice.

Requests in flight are journaled too (``admit``; ``api.usage.inflight``): after a crash,
``recover`` settles each one a dead process left from what it had delivered, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import orjson

from api.limits.limiter import Limiter
from api.limits.rules import Plan
from api.settings import ModelPrice
from api.storage.usage import UsageStore
from api.usage import interrupted
from api.usage.inflight import SUFFIX, InflightSlot, InflightTable, read_slots
from api.usage.records import UsageRecord

logger = logging.getLogger(__name__)


class UsageRecorder:
    def __init__(
        self, store: UsageStore, journal_dir: Path, flush_interval_s: float, batch_size: int
    ) -> None:
        self._store = store
        self._dir = journal_dir
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._owner = f"{os.getpid()}@{socket.gethostname()}"
        self._pending: list[UsageRecord] = []
        self._sealed: list[tuple[Path, list[UsageRecord]]] = []
        self._file: IO[bytes] | None = None
        self._segment: Path | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight = InflightTable(journal_dir, self._owner)
        self._orphaned: list[Path] = []

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in self._claim_orphans():
            if path.suffix == SUFFIX:
                self._orphaned.append(path)
            else:
                self._sealed.append((path, read_segment(path)))
        self._open_segment()
        await self.flush()
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    def admit(self, fields: Mapping[str, str], plan: Plan, lease_id: str) -> InflightSlot | None:
        """Journal an admitted request (see ``interrupted.admission``); its slot journals
        its progress until its record is journaled."""
        if self._file is None:
            return None  # not running: its record goes to the late journal anyway
        return self._inflight.admit(interrupted.admission(fields, plan, lease_id))

    async def recover(self, limiter: Limiter, prices: Mapping[str, ModelPrice]) -> int:
        """Settle the requests that dead processes left in flight: one ``interrupted`` record
        each (the store skips ids it has) and their reservations settled (once per lease).
        A file is removed only once all of it is settled; else the next start retries it.
        Returns the number of records written."""
        written = 0
        for path in list(self._orphaned):
            try:
                records, releases = interrupted.settle(list(read_slots(path)), prices)
                written += await self._store.write(records)
                for release in releases:
                    await limiter.release_interrupted(
                        release.plan, release.lease_id, release.used_tokens
                    )
            except Exception:
                logger.exception("settling the requests in flight in %s failed", path.name)
                continue
            if records:
                logger.info("settled %d interrupted requests from %s", len(records), path.name)
            path.unlink(missing_ok=True)
            self._orphaned.remove(path)
        return written

    def record(self, record: UsageRecord) -> None:
        """Journal ``record`` (durable once this returns) and queue it for the database."""
        line = orjson.dumps(record.to_json()) + b"\n"
        if self._file is None:
            # Not running (a request that outlived shutdown): journal only; the next start
            # of any replica on this host replays it.
            self._dir.mkdir(parents=True, exist_ok=True)
            with (self._dir / f"{self._owner}@late.jsonl").open("ab") as late:
                late.write(line)
            return
        self._file.write(line)
        self._file.flush()
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything recorded so far to the database."""
        async with self._lock:
            if self._pending:
                self._seal()
            while self._sealed:
                path, records = self._sealed[0]
                await self._store.write(records)
                path.unlink(missing_ok=True)
                self._sealed.pop(0)

    async def close(self, writer_grace_s: float = 10.0) -> None:
        if self._task is not None:
            # Let a write in progress finish: cancelling it mid-transaction leaves its
            # connection holding SQLite's write lock, and the final flush below would wait on
            # that lock until the busy timeout.
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), writer_grace_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._segment is not None and not self._pending:
                self._segment.unlink(missing_ok=True)
            self._inflight.close()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                # The segments stay on disk and in memory: the next round retries them.
                logger.exception("writing usage records failed; will retry")

    def _open_segment(self) -> None:
        self._segment = self._dir / f"{self._owner}@{uuid.uuid4().hex}.jsonl"
        self._file = self._segment.open("ab")

    def _seal(self) -> None:
        assert self._file is not None and self._segment is not None
        self._file.close()
        self._sealed.append((self._segment, self._pending))
        self._pending = []
        self._open_segment()

    def _claim_orphans(self) -> list[Path]:
        claimed = []
        for path in sorted([*self._dir.glob("*.jsonl"), *self._dir.glob(f"*{SUFFIX}")]):
            if _owner_alive(path.name):
                continue
            target = self._dir / f"{self._owner}@recovered-{uuid.uuid4().hex}{path.suffix}"
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another replica claimed it first
            claimed.append(target)
        return claimed


def read_segment(path: Path) -> list[UsageRecord]:
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(UsageRecord.from_json(orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            logger.warning("skipping a torn usage journal line in %s", path.name)
    return records


def _owner_alive(name: str) -> bool:
    # Segment names are "<pid>@<host>@<unique>.jsonl" ("@" never occurs in a host name).
    pid, _, rest = name.partition("@")
    host = rest.split("@", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's journal (shared volume): its own process replays it
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
