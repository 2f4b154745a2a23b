"""A response generated while its client waits: as JSON, or streamed as events.

A streamed response is stored when its stream ends, however it ends: a client that left gets
its response kept as ``incomplete`` with what had been generated.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sqlalchemy.ext.asyncio import AsyncEngine

from api.chat.run import ChatRun
from api.responses.finish import keep
from api.responses.generate import lifecycle, response_events
from api.responses.objects import usage_json
from api.responses.stream import event_frame, numbered
from api.storage.responses import RUNNING, ResponseRecord
from api.storage.time import utcnow


async def collect(db: AsyncEngine, run: ChatRun, record: ResponseRecord) -> None:
    """Generate the whole reply into ``record`` and keep it; errors propagate (as HTTP)."""
    await generate_all(run, record)
    await keep(db, record)


async def generate_all(run: ChatRun, record: ResponseRecord) -> None:
    """Generate the whole reply into ``record``; errors propagate."""
    events = response_events(run, record, contain_errors=False)
    try:
        async for _ in events:
            pass
    finally:
        await events.aclose()


async def streamed(
    db: AsyncEngine, run: ChatRun, record: ResponseRecord
) -> AsyncGenerator[bytes, None]:
    """The reply's SSE frames from ``response.created`` on; ``record`` kept at the end."""
    number = 0
    events = response_events(run, record)
    try:
        for event in (lifecycle("created", record), lifecycle("in_progress", record)):
            yield event_frame(numbered(event, number))
            number += 1
        async for event in events:
            yield event_frame(numbered(event, number))
            number += 1
    finally:
        await events.aclose()
        if record.status in RUNNING:
            # The client left (or the stream broke) before the end.
            state = run.states[0]
            record.status = "incomplete"
            record.usage = usage_json(state.prompt_tokens, state.completion_tokens)
            record.completed_at = utcnow()
        await keep(db, record)
