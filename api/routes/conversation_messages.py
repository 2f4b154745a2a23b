"""``/v1/conversations/{id}/messages``: the deprecated, pre-OpenAI view of a conversation.

It reads and writes the conversation's items (``api.conversations.legacy``); the
Deprecation/Sunset headers come from ``api.deprecation`` (its built-in route notice).
``POST`` sends the stored history plus the new user message (truncated as
``api.conversations.history`` describes) and stores both messages; with ``stream: true`` the
reply arrives as chat completion chunks over SSE. The model is the one the conversation was
created with, or the message's ``model`` for a conversation created without one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.conversations.legacy import CHAT_ROLES, HistoryTurn, history_of, legacy_message
from api.conversations.reply import Thread, collect_reply, start_reply, store_turn, streamed_reply
from api.errors import InvalidRequestError
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.http.sse import sse_response
from api.routes.conversations import db_of, order_param, org_of, owned
from api.routes.pages import page, page_params
from api.schemas.conversations import AppendMessage
from api.services import request_id_of, services_of
from api.storage import conversation_items as store
from api.usage.meter import usage_of


async def append_message(request: Request) -> Response:
    services = services_of(request)
    db, org_id = db_of(request), org_of(request)
    conversation_id: str = request.path_params["conversation_id"]
    conversation = await owned(request, store.get_conversation(db, org_id, conversation_id))
    body = await parse_body(request, AppendMessage, services.settings.max_request_bytes)
    model = body.model or conversation.model
    if model is None:
        raise InvalidRequestError(
            "This conversation has no model: name one in 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    items = await owned(
        request, store.list_items(db, org_id, conversation_id, limit=None, order="asc")
    )
    system_prompt, turns = history_of(items or [])
    thread = Thread(db, org_id, conversation_id, model, system_prompt)
    history = [*turns, HistoryTurn("user", body.content)]
    run = await start_reply(services, thread, history, body, request_id_of(request))
    usage = usage_of(request)
    usage.model = run.model.id  # the limiter read no model from the body: set it here
    usage.track(run.states)
    # Stored only once the reply has started: a refused request leaves no dangling turn.
    await owned(request, store_turn(thread, "user", body.content))
    if body.stream:
        return sse_response(streamed_reply(run, thread), {}, lead=len(run.streams))
    return json_response(await owned(request, collect_reply(run, thread)))


async def list_messages(request: Request) -> Response:
    after, limit = page_params(request)
    order = order_param(request, "asc")
    found = await owned(
        request,
        store.list_items(
            db_of(request),
            org_of(request),
            request.path_params["conversation_id"],
            after,
            limit + 1,
            order,
            roles=CHAT_ROLES,
        ),
    )
    return json_response(page([legacy_message(item) for item in found or []], limit))
