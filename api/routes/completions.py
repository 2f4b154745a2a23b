"""``POST /v1/completions`` (legacy text completions)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from api.assembly import ReplyState
from api.chat_replies import ReplyMeta
from api.choices import fan_out, start_streams
from api.completion_replies import collect_completion, completion_chunk_events
from api.deprecation import model_headers
from api.requests import parse_body
from api.responses import json_response
from api.schemas.completions import CompletionRequest
from api.services import request_id_of, services_of
from api.settings import ModelKind
from api.streaming import sse_response
from api.translate import completion_to_generations
from api.usage.meter import usage_of


async def create_completion(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, CompletionRequest, services.settings.max_request_bytes)
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    request_id = request_id_of(request)
    per_prompt = completion_to_generations(body, model, request_id)
    generations = [
        choice
        for index, generation in enumerate(per_prompt)
        for choice in fan_out(generation, body.n, first_index=index * body.n)
    ]
    streams = await start_streams(services.backend, generations)
    states = [ReplyState() for _ in generations]
    usage_of(request).track(states, prompts=len(per_prompt))
    meta = ReplyMeta(
        id=f"cmpl-{request_id}",
        created=int(time.time()),
        model=body.model,
        system_fingerprint=services.settings.system_fingerprint,
    )
    if body.stream:
        events = completion_chunk_events(
            streams, generations, meta, body.echo, body.include_usage(), states
        )
        return sse_response(events, headers=model_headers(model, body.model))
    completion = await collect_completion(streams, generations, meta, body.echo, states)
    return json_response(completion, headers=model_headers(model, body.model))
