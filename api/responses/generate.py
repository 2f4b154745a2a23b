"""A started generation as Responses stream events, the record filled in as it goes.

The events run from ``response.created`` to one of ``response.completed``,
``response.incomplete`` (``max_output_tokens`` or the content filter cut the reply) or
``response.failed`` (the generation broke after it started); ``sequence_number`` is added by
whoever sends them. The JSON reply runs the same events and keeps only the record.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from api.chat.replies import reply_reason, tool_splitter
from api.chat.run import ChatRun
from api.errors import APIError
from api.generation.choices import choice_events
from api.generation.logprobs import chat_logprobs
from api.generation.tool_stream import Part
from api.responses.objects import response_json, usage_json
from api.responses.output import Event, OutputBuilder
from api.storage.responses import ResponseRecord
from api.storage.time import utcnow

logger = logging.getLogger(__name__)

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def lifecycle(kind: str, record: ResponseRecord) -> Event:
    """``response.created``, ``.in_progress``, ``.completed``... carrying the response."""
    return {"type": f"response.{kind}", "response": response_json(record)}


async def response_events(
    run: ChatRun, record: ResponseRecord, *, contain_errors: bool = True
) -> AsyncGenerator[Event, None]:
    """The events of ``run``'s reply; ``record`` holds the output, usage and status at the end.

    With ``contain_errors``, a failure after the start ends the events with
    ``response.failed``; without, it propagates (a JSON reply answers with the error).
    """
    request, state = run.generations[0], run.states[0]
    splitter = tool_splitter(request)
    builder = OutputBuilder()
    logprobs = request.params.return_log_probs
    calls = 0
    try:
        async for event in choice_events(run.streams, run.generations, run.states):
            if event.text is None:
                parts: list[Part] = splitter.finish() if splitter else []
            else:
                parts = splitter.feed(event.text) if splitter else [event.text]
            calls += sum(not isinstance(part, str) for part in parts)
            entries = _logprobs(run) if logprobs else None
            for item in builder.feed(parts, entries):
                yield item
    except APIError as exc:
        if not contain_errors:
            raise
        yield _failed(record, builder, exc.message, state.usage().model_dump())
        return
    except Exception:
        if not contain_errors:
            raise
        logger.exception("response generation failed after it started")
        yield _failed(record, builder, "The generation failed.", state.usage().model_dump())
        return
    reason = reply_reason(state, request, calls > 0)
    incomplete = _INCOMPLETE.get(reason)
    status = "incomplete" if incomplete else "completed"
    for item in builder.finish(status):
        yield item
    record.output = builder.items
    record.usage = usage_json(state.prompt_tokens, state.completion_tokens)
    record.status = status
    record.incomplete_details = {"reason": incomplete} if incomplete else None
    record.completed_at = utcnow()
    yield lifecycle(status, record)


def _logprobs(run: ChatRun) -> list[dict[str, Any]]:
    top = run.generations[0].params.top_logprobs
    entries: list[dict[str, Any]] = chat_logprobs(run.states[0].new_logprobs(), top)["content"]
    return entries


def _failed(
    record: ResponseRecord, builder: OutputBuilder, message: str, usage: dict[str, int]
) -> Event:
    builder.finish("incomplete")
    record.output = builder.items
    record.usage = usage_json(usage["prompt_tokens"], usage["completion_tokens"])
    record.status = "failed"
    record.error = {"code": "server_error", "message": message}
    record.completed_at = utcnow()
    return lifecycle("failed", record)
