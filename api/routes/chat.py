"""``POST /v1/chat/completions``."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from api.assembly import primed
from api.chat_replies import ReplyMeta, chat_chunk_events, collect_chat_completion
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
    generation = chat_to_generation(body, model, request_id)
    chunks = await primed(services.backend.generate(generation))
    meta = ReplyMeta(
        id=f"chatcmpl-{request_id}",
        created=int(time.time()),
        model=body.model,
        system_fingerprint=services.settings.system_fingerprint,
    )
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = chat_chunk_events(chunks, generation.params, meta, include_usage)
        return sse_response(events, headers={})
    return json_response(await collect_chat_completion(chunks, generation.params, meta))
