"""The batch and file stores of an application, and its worker (one per process)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from api.batches.worker import BatchStores, BatchWorker
from api.files.service import Files
from api.files.store import build_file_store
from api.gateway import Gateway, gateway_of
from api.services import Services
from api.settings import Settings
from api.storage.batch_lines import LineStore
from api.storage.batches import BatchStore
from api.storage.files import FileRecords


def build_stores(engine: AsyncEngine, settings: Settings) -> BatchStores:
    return BatchStores(
        files=Files(FileRecords(engine), build_file_store(settings.files)),
        batches=BatchStore(engine),
        lines=LineStore(engine),
    )


def stores_of(connection: HTTPConnection) -> BatchStores:
    """The app's stores (built on start-up; on first use where no lifespan ran)."""
    state = connection.app.state
    stores: BatchStores | None = getattr(state, "batch_stores", None)
    if stores is None:
        gateway = gateway_of(connection.scope)
        stores = build_stores(gateway.engine, gateway.settings)
        state.batch_stores = stores
    return stores


def start_worker(services: Services, stores: BatchStores, gateway: Gateway) -> BatchWorker | None:
    """The in-process worker, unless the settings leave batches to a standalone one."""
    if not services.settings.batches.worker_in_process:
        return None
    worker = BatchWorker(services, stores, gateway.recorder)
    worker.start()
    return worker
