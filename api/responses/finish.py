"""What happens once a response has ended: it is stored, and its conversation grows.

A response with ``conversation`` adds its input items and then its output items to that
conversation (a failed one adds nothing, so a retry does not repeat the input).
"""

from __future__ import annotations

import logging

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage import conversation_items
from api.storage import responses as store
from api.storage.responses import ResponseRecord

logger = logging.getLogger(__name__)


async def keep(db: AsyncEngine, record: ResponseRecord, inserted: bool = False) -> None:
    """Store the ended response (if asked to) and extend its conversation; shielded, so a
    client that leaves does not lose what was generated."""
    with anyio.CancelScope(shield=True):
        if record.params.get("store"):
            if inserted:
                await store.save(db, record)
            else:
                await store.insert(db, record)
        await _extend_conversation(db, record)


async def _extend_conversation(db: AsyncEngine, record: ResponseRecord) -> None:
    conversation = record.params.get("conversation")
    if not conversation or record.status == "failed":
        return
    inputs = record.context[len(record.context) - record.input_count :]
    try:
        await conversation_items.append_items(
            db, record.org_id, conversation["id"], [*inputs, *record.output]
        )
    except conversation_items.ItemIdTaken as taken:
        # Another request added the same item id since this one was checked (api.responses
        # .run.refuse_taken_ids): the items are kept under ids of the conversation's own.
        logger.warning("response %s: item id %s taken; appended with new ids", record.id, taken)
        fresh = [{k: v for k, v in item.items() if k != "id"} for item in inputs]
        await conversation_items.append_items(
            db, record.org_id, conversation["id"], [*fresh, *record.output]
        )
