"""A batch's end: its output and error files, assembled from the stored per-line results.

Files are written in input order from the ``batch_lines`` rows, so each line appears exactly
once whatever crashes happened while it ran. Their ids derive from the batch id: repeating a
finalization interrupted by a crash rewrites the same files.
"""

from __future__ import annotations

import hashlib
import logging

from api.files.service import Files
from api.storage.batch_lines import DONE, LineStore
from api.storage.batches import BatchRecord, BatchStore
from api.storage.files import FileRecord

logger = logging.getLogger(__name__)


def derived_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


async def finalize(batch: BatchRecord, files: Files, batches: BatchStore, lines: LineStore) -> str:
    """Write the files and end the batch; returns the status it ended with."""
    if batch.cancelling_at is not None:
        status = "cancelled"
    elif await lines.unfinished(batch.id):
        status = "expired"
    else:
        status = "completed"
    results = await lines.results(batch.id)
    written: list[FileRecord] = []
    ids: dict[str, str | None] = {"output_file_id": None, "error_file_id": None}
    for kind, field, wanted in (
        ("output", "output_file_id", True),
        ("error", "error_file_id", False),
    ):
        chosen = [line for state, line in results if (state == DONE) is wanted]
        if not chosen:
            continue
        data = ("\n".join(chosen) + "\n").encode()
        file_id = derived_file_id(batch.id, kind)
        record = Files.describe(
            file_id, batch.org_id, batch.key_id, f"{batch.id}_{kind}.jsonl", "batch_output", data
        )
        await files.blobs.put(record.storage_key, data)
        written.append(record)
        ids[field] = file_id
    if await batches.finish(batch.id, status, written, **ids):
        logger.info("batch %s %s (%d lines)", batch.id, status, len(results))
    return status
