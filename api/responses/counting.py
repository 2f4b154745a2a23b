"""``POST /v1/responses/input_tokens``: the prompt tokens a response would start with.

The tokenizer runs inside Triton, so the count is exact only from Triton: the request runs as
a one-token generation whose first response reports the prompt's tokens, and is then closed.
It is not billed (no usage is tracked for it); the key's limits still admit it.
"""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import InvalidRequestError
from api.generation.choices import choice_events
from api.http.request_body import validate_payload
from api.responses.run import Owner, new_record, start_generation
from api.schemas.responses import CountInputTokens, CreateResponse
from api.services import Services


async def count_input_tokens(
    db: AsyncEngine, services: Services, owner: Owner, body: CountInputTokens, request_id: str
) -> int:
    payload = body.model_dump(exclude_none=True, exclude=set(body.model_extra or {}))
    if body.model is None:
        raise InvalidRequestError(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    payload.update(max_output_tokens=1, store=False)
    payload.setdefault("input", "")
    create = validate_payload(orjson.loads(orjson.dumps(payload)), CreateResponse)
    record = await new_record(db, services, owner, create)
    run = await start_generation(services, create, record, request_id)
    events = choice_events(run.streams, run.generations, run.states)
    try:
        async for _ in events:
            pass
    finally:
        await events.aclose()
    return run.states[0].prompt_tokens
