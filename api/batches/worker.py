"""The batch worker: validates new batches, runs their lines, finalizes them.

One per process: inside the API (started by the lifespan) or alone
(``python -m api batches work``). Lines are leased in the database, so any number of workers
share the batches without running a line twice; a lease is renewed while its line runs and
expires if the worker dies, after which another worker (or the restarted one) takes the line.

Batch work yields to interactive traffic: at most ``batches.concurrency`` lines run at once,
and none is started while this process's interactive requests fill ``interactive_share`` of
a model's admission slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from api.batches.finalize import finalize
from api.batches.lines import BatchInvalidError, line_request_id, output_line, parse_input
from api.batches.runner import LineOutcome, run_line
from api.files.service import Files
from api.services import Services
from api.storage.batch_lines import LeasedLine, LineStore
from api.storage.batches import BatchRecord, BatchStore
from api.storage.time import utcnow
from api.usage.pricing import cost_nanos
from api.usage.recorder import UsageRecorder
from api.usage.records import UsageRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchStores:
    files: Files
    batches: BatchStore
    lines: LineStore


class BatchWorker:
    def __init__(self, services: Services, stores: BatchStores, recorder: UsageRecorder) -> None:
        self._services = services
        self._stores = stores
        self._recorder = recorder
        self._options = services.settings.batches
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_renewal = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="batch-worker")

    async def close(self) -> None:
        """Stop taking lines, end the running ones and give their leases back."""
        self._stopping.set()
        tasks = [task for task in (self._task, *self._running) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stores.lines.release(self.owner)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.step()
            except Exception:
                logger.exception("batch worker step failed")
                worked = False
            await self._pause(short=worked)

    async def step(self) -> bool:
        """One pass over the batches; True when something changed."""
        batches = self._stores.batches
        worked = False
        for batch in await batches.with_status(["validating"]):
            worked |= await self._validate(batch)
        for batch in await batches.with_status(["finalizing"]):
            await finalize(batch, self._stores.files, batches, self._stores.lines)
            worked = True
        for batch in await batches.with_status(["in_progress", "cancelling"]):
            worked |= await self._advance(batch)
        await self._renew()
        return worked

    async def _validate(self, batch: BatchRecord) -> bool:
        files = self._stores.files
        record = await files.records.get(batch.input_file_id, batch.org_id)
        try:
            if record is None:
                raise BatchInvalidError("file_not_found", "The input file no longer exists.")
            data = await files.content(record)
            # Off the event loop: 50,000 lines take a while to parse and check.
            parsed = await asyncio.to_thread(
                parse_input, data, batch.id, batch.endpoint, self._options.max_lines
            )
        except BatchInvalidError as invalid:
            return await self._stores.batches.transition(
                batch.id, ["validating"], "failed", errors=invalid.public()
            )
        return await self._stores.lines.load(batch.id, parsed)

    async def _advance(self, batch: BatchRecord) -> bool:
        lines = self._stores.lines
        stopping = batch.status == "cancelling" or utcnow() >= batch.expires_at
        if stopping or not await lines.unfinished(batch.id):
            # Lines running elsewhere under a live lease finish first; then the files.
            if await lines.unfinished(batch.id, live_only=True):
                return False
            return await self._stores.batches.transition(batch.id, [batch.status], "finalizing")
        free = self._free_slots()
        if free <= 0:
            return False
        leased = await lines.lease(batch.id, self.owner, free, self._options.lease_s)
        for line in leased:
            task = asyncio.create_task(self._run(batch, line), name=f"batch-line-{line.index}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return bool(leased)

    def _free_slots(self) -> int:
        free = self._options.concurrency - len(self._running)
        admission = self._services.resilience.admission
        interactive = admission.busy - len(self._running)
        limit = self._services.settings.resilience.max_in_flight * self._options.interactive_share
        return 0 if interactive >= limit else free

    async def _run(self, batch: BatchRecord, line: LeasedLine) -> None:
        try:
            await self._run_line(batch, line)
        except Exception:
            # The lease expires and the line runs again; nothing was stored for it.
            logger.exception("batch %s line %d could not be stored", batch.id, line.index)

    async def _run_line(self, batch: BatchRecord, line: LeasedLine) -> None:
        request_id = line_request_id(batch.id, line.index)
        started = time.perf_counter()
        outcome = await run_line(self._services, batch.endpoint, line.request, request_id)
        latency_ms = (time.perf_counter() - started) * 1000
        # The usage record's id is the line's: if the line runs again after a crash, the
        # record is not counted twice.
        self._recorder.record(self._usage(batch, request_id, outcome, latency_ms))
        result = output_line(
            batch.id, line.index, line.custom_id, outcome.status_code, outcome.body
        )
        if not await self._stores.lines.finish(line, self.owner, outcome.succeeded, result):
            logger.warning("batch %s line %d: lease lost, result dropped", batch.id, line.index)

    def _usage(
        self, batch: BatchRecord, request_id: str, outcome: LineOutcome, latency_ms: float
    ) -> UsageRecord:
        prices = self._services.settings.usage.prices
        return UsageRecord(
            id=request_id.removeprefix("batch_req_").ljust(32, "0")[:32],
            request_id=request_id,
            created_at=utcnow(),
            key_id=batch.key_id,
            org_id=batch.org_id,
            model=outcome.model,
            endpoint=f"batch:{batch.endpoint}"[:64],
            status=outcome.status_code,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cached_tokens=0,
            latency_ms=latency_ms,
            cost_nanos=cost_nanos(
                prices, outcome.model, outcome.prompt_tokens, outcome.completion_tokens
            ),
        )

    async def _renew(self) -> None:
        loop = asyncio.get_running_loop()
        if self._running and loop.time() - self._last_renewal >= self._options.lease_s / 3:
            await self._stores.lines.renew(self.owner, self._options.lease_s)
            self._last_renewal = loop.time()

    async def _pause(self, short: bool) -> None:
        # Busy: come back as soon as a line ends; idle: poll.
        timeout = self._options.poll_interval_s
        if short and not self._running:
            return
        if self._running and len(self._running) >= self._options.concurrency:
            await asyncio.wait(self._running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout if not short else 0.01)
