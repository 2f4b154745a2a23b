"""``/v1/batches``: create, retrieve, cancel, list (the worker does the running).

Batches belong to the key's organization; usage is counted against the key that created
the batch.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.batches.state import stores_of
from api.errors import InvalidRequestError, NotFoundError
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.routes.pages import page, page_params
from api.schemas.batches import CreateBatch
from api.storage.batches import BatchRecord, Counts
from api.storage.time import utcnow

_WINDOWS = {"24h": timedelta(hours=24)}


async def create_batch(request: Request) -> Response:
    identity = identity_of(request)
    stores = stores_of(request)
    body = await parse_body(request, CreateBatch, 64 * 1024)
    source = await stores.files.records.get(body.input_file_id, identity.org_id)
    if source is None or source.purpose != "batch":
        raise InvalidRequestError(
            f"No file {body.input_file_id!r} with purpose 'batch'.", param="input_file_id"
        )
    now = utcnow()
    record = BatchRecord(
        id=f"batch_{secrets.token_hex(12)}",
        org_id=identity.org_id,
        key_id=identity.key_id,
        endpoint=body.endpoint,
        input_file_id=source.id,
        completion_window=body.completion_window,
        status="validating",
        metadata=body.metadata,
        errors=None,
        output_file_id=None,
        error_file_id=None,
        total=0,
        created_at=now,
        expires_at=now + _WINDOWS[body.completion_window],
    )
    await stores.batches.add(record)
    return json_response(record.public(Counts()))


async def retrieve_batch(request: Request) -> Response:
    record = await _owned(request)
    counts = await stores_of(request).batches.counts([record])
    return json_response(record.public(counts[record.id]))


async def cancel_batch(request: Request) -> Response:
    record = await _owned(request)
    batches = stores_of(request).batches
    if not await batches.transition(record.id, ["validating", "in_progress"], "cancelling"):
        current = await _owned(request)
        if current.status not in ("cancelling", "cancelled"):
            raise InvalidRequestError(
                f"A batch that is {current.status} cannot be cancelled.", code="invalid_state"
            )
    return await retrieve_batch(request)


async def list_batches(request: Request) -> Response:
    after, limit = page_params(request)
    batches = stores_of(request).batches
    records = await batches.page(identity_of(request).org_id, after, limit + 1)
    counts = await batches.counts(records)
    return json_response(page([record.public(counts[record.id]) for record in records], limit))


async def _owned(request: Request) -> BatchRecord:
    batch_id = request.path_params["batch_id"]
    record = await stores_of(request).batches.get(batch_id, identity_of(request).org_id)
    if record is None:
        raise NotFoundError(f"No such batch: {batch_id}", param="batch_id")
    return record
