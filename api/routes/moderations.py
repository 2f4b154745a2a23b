"""``POST /v1/moderations``: the content filter's verdict on each input, in OpenAI's shape."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from api.errors import ModelNotFoundError
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.ids import unique_hex
from api.model_names import moderation_model
from api.moderation.filters import Verdict
from api.schemas.moderations import ModerationRequest, ModerationResponse, ModerationResult
from api.services import services_of


async def create_moderation(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, ModerationRequest, services.settings.max_request_bytes)
    model = moderation_model(services.settings)
    if body.model is not None and body.model != model:
        # Only the configured filter answers here: another name would be a reply from a
        # model that never ran.
        raise ModelNotFoundError(body.model)
    texts = [body.input] if isinstance(body.input, str) else body.input
    content_filter = services.content_filter
    if content_filter is None:
        verdicts = [Verdict() for _ in texts]  # nothing configured: nothing is flagged
    else:
        verdicts = list(await asyncio.gather(*(content_filter.check(text) for text in texts)))
    response = ModerationResponse(
        id=f"modr-{unique_hex()}",
        model=model,
        results=[render(verdict) for verdict in verdicts],
    )
    return json_response(response)


def render(verdict: Verdict) -> ModerationResult:
    return ModerationResult(
        flagged=verdict.flagged, categories=verdict.categories, category_scores=verdict.scores
    )
