"""``POST /v1/chat/completions``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.chat.replies import chat_chunk_events, collect_chat_completion
from api.chat.run import begin_chat
from api.deprecation import model_headers
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.http.sse import sse_response
from api.schemas.chat import ChatCompletionRequest
from api.services import request_id_of, services_of
from api.usage.meter import usage_of


async def create_chat_completion(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, ChatCompletionRequest, services.settings.max_request_bytes)
    run = await begin_chat(services, body, request_id_of(request))
    usage_of(request).track(run.states)
    headers = model_headers(run.model, body.model)
    if body.stream:
        events = chat_chunk_events(
            run.streams, run.generations, run.meta, body.include_usage(), run.states, run.chunks
        )
        # The role chunks (one per choice) go out with the first text.
        return sse_response(events, headers, lead=len(run.streams))
    completion = await collect_chat_completion(run.streams, run.generations, run.meta, run.states)
    return json_response(completion, headers=headers)
