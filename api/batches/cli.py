"""``python -m api batches work|watch``: the standalone worker and a progress bar.

``work`` runs the same worker the API runs in-process (set ``API_BATCHES__WORKER_IN_PROCESS``
to false on the API to leave all batches to standalone workers). ``watch ID`` polls the
database and draws the batch's progress on stderr until it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TextIO

from api.app import build_services
from api.backend.triton_grpc import TritonGrpcBackend
from api.batches.state import build_stores
from api.batches.worker import BatchWorker
from api.gateway import open_gateway
from api.settings import Settings
from api.storage.batches import TERMINAL, BatchStore, Counts
from api.storage.engine import create_engine

BAR_WIDTH = 30


def add_parser(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batches = groups.add_parser("batches").add_subparsers(dest="action", required=True)
    batches.add_parser("work", help="run the batch worker until SIGTERM/SIGINT")
    watch = batches.add_parser("watch", help="show a batch's progress until it ends")
    watch.add_argument("batch_id")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "work":
        await work(settings)
        return 0
    return await watch(settings, args.batch_id, args.interval, sys.stderr)


async def work(settings: Settings) -> None:
    gateway = await open_gateway(settings)
    backend = TritonGrpcBackend(settings.triton)
    services = build_services(settings, backend)
    worker = BatchWorker(services, build_stores(gateway.engine, settings), gateway.recorder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker.start()
    try:
        await stop.wait()
    finally:
        await worker.close()
        await backend.close()
        await services.embeddings.close()
        await gateway.close()


async def watch(settings: Settings, batch_id: str, interval: float, out: TextIO) -> int:
    """Draw the progress until the batch ends; 0 if it completed, 1 otherwise."""
    engine = create_engine(settings.database.url)
    store = BatchStore(engine)
    try:
        while True:
            batch = await store.get(batch_id)
            if batch is None:
                out.write(f"no batch {batch_id!r}\n")
                return 1
            counts = (await store.counts([batch]))[batch.id]
            out.write(("\r" if out.isatty() else "") + progress_line(batch.status, counts))
            out.write("" if out.isatty() and batch.status not in TERMINAL else "\n")
            out.flush()
            if batch.status in TERMINAL:
                return 0 if batch.status == "completed" else 1
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(interval)
    finally:
        await engine.dispose()


def progress_line(status: str, counts: Counts) -> str:
    """``[#########.........]  45/100  45% (completed 44, failed 1) in_progress``."""
    finished = counts.completed + counts.failed
    share = finished / counts.total if counts.total else 0.0
    filled = round(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return (
        f"[{bar}] {finished:>6}/{counts.total:<6} {share:4.0%} "
        f"(completed {counts.completed}, failed {counts.failed}) {status}"
    )
