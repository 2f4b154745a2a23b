"""``POST /v1/chat/completions``."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from api.assembly import ReplyState
from api.chat_replies import ReplyMeta, chat_chunk_events, collect_chat_completion
from api.choices import fan_out, start_streams
from api.deprecation import model_headers
from api.requests import parse_body
from api.responses import json_response
from api.schemas.chat import ChatCompletionRequest
from api.services import request_id_of, services_of
from api.settings import ModelKind
from api.streaming import sse_response
from api.translate import chat_to_generation


async def create_chat_completion(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, ChatCompletionRequest, services.settings.max_request_bytes)
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    request_id = request_id_of(request)
    generations = fan_out(chat_to_generation(body, model, request_id), body.n)
    streams = await start_streams(services.backend, generations)
    # One state per choice, owned here so whatever records usage sees it after the stream.
    states = [ReplyState() for _ in generations]
    meta = ReplyMeta(
        id=f"chatcmpl-{request_id}",
        created=int(time.time()),
        model=body.model,
        system_fingerprint=services.settings.system_fingerprint,
    )
    if body.stream:
        events = chat_chunk_events(streams, generations, meta, body.include_usage(), states)
        return sse_response(events, headers=model_headers(model, body.model))
    completion = await collect_chat_completion(streams, generations, meta, states)
    return json_response(completion, headers=model_headers(model, body.model))
