"""``POST /v1/completions`` (legacy text completions)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.completions.replies import collect_completion, completion_chunk_events
from api.completions.run import begin_completion
from api.deprecation import model_headers
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.http.sse import sse_response
from api.schemas.completions import CompletionRequest
from api.services import request_id_of, services_of
from api.usage.meter import usage_of


async def create_completion(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, CompletionRequest, services.settings.max_request_bytes)
    run = await begin_completion(services, body, request_id_of(request))
    usage_of(request).track(run.states, prompts=run.prompts)
    headers = model_headers(run.model, body.model)
    if body.stream:
        events = completion_chunk_events(
            run.streams,
            run.generations,
            run.meta,
            body.echo,
            body.include_usage(),
            run.states,
            run.prompts,
        )
        return sse_response(events, headers)
    completion = await collect_completion(
        run.streams, run.generations, run.meta, body.echo, run.states, run.prompts
    )
    return json_response(completion, headers=headers)
