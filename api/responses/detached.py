"""A response outside any request's organization context: a batch line.

A batch line has no stored history to continue and nothing to store into, so
``previous_response_id``, ``conversation``, ``background`` and ``stream`` are refused by
name, and the response is generated as ``store: false``.
"""

from __future__ import annotations

from api.chat.run import ChatRun
from api.errors import InvalidRequestError
from api.responses.foreground import generate_all
from api.responses.run import Owner, build_record, start_generation
from api.schemas.responses import CreateResponse
from api.services import Services
from api.settings import ModelKind
from api.storage.responses import ResponseRecord


async def detached_response(
    services: Services, body: CreateResponse, request_id: str
) -> tuple[ResponseRecord, ChatRun]:
    refused = {
        "previous_response_id": body.previous_response_id is not None,
        "conversation": body.conversation is not None,
        "background": bool(body.background),
        "stream": bool(body.stream),
    }
    for param, present in refused.items():
        if present:
            raise InvalidRequestError(
                f"'{param}' is not available in a batch.",
                param=param,
                code="unsupported_parameter",
            )
    services.registry.resolve(body.model, ModelKind.CHAT)
    unstored = body.model_copy(update={"store": False})
    record = build_record(services, Owner("", ""), unstored, [])
    run = await start_generation(services, unstored, record, request_id)
    await generate_all(run, record)
    return record, run
