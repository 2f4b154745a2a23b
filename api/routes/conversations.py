"""``/v1/conversations``: stored conversations and their messages.

``POST /v1/conversations/{id}/messages`` sends the stored history plus the new user message
(truncated as ``api.conversations.history`` describes) and stores both messages; with
``stream: true`` the reply arrives as chat completion chunks over SSE. Conversations belong to
the key's organization; another organization gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.conversations.history import Turn
from api.conversations.reply import collect_reply, start_reply, streamed_reply
from api.errors import InvalidRequestError, NotFoundError
from api.gateway import gateway_of
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.http.sse import sse_response
from api.routes.pages import page, page_params
from api.schemas.conversations import AppendMessage, CreateConversation
from api.services import request_id_of, services_of
from api.settings import ModelKind
from api.storage.conversations import Conversation, ConversationStore
from api.usage.meter import usage_of


@dataclass(frozen=True, slots=True)
class NewTurn:
    role: str
    content: str


def store_of(request: Request) -> ConversationStore:
    engine: AsyncEngine = gateway_of(request.scope).engine
    return ConversationStore(engine)


async def create_conversation(request: Request) -> Response:
    identity = identity_of(request)
    body = await parse_body(request, CreateConversation, 1024 * 1024)
    services_of(request).registry.resolve(body.model, ModelKind.CHAT)
    conversation = await store_of(request).create(
        identity.org_id, identity.key_id, body.model, body.system_prompt, body.metadata
    )
    return json_response(conversation.public())


async def retrieve_conversation(request: Request) -> Response:
    return json_response((await _owned(request)).public())


async def list_conversations(request: Request) -> Response:
    after, limit = page_params(request)
    found = await store_of(request).page(identity_of(request).org_id, after, limit + 1)
    return json_response(page([conversation.public() for conversation in found], limit))


async def delete_conversation(request: Request) -> Response:
    conversation = await _owned(request)
    await store_of(request).delete(conversation.id)
    return json_response({"id": conversation.id, "object": "conversation.deleted", "deleted": True})


async def append_message(request: Request) -> Response:
    services = services_of(request)
    conversation = await _owned(request)
    body = await parse_body(request, AppendMessage, services.settings.max_request_bytes)
    store = store_of(request)
    history: list[Turn] = [*await store.messages(conversation.id), NewTurn("user", body.content)]
    run = await start_reply(services, conversation, history, body, request_id_of(request))
    usage = usage_of(request)
    usage.model = run.model.id  # the body names no model: the limiter could not tell
    usage.track(run.states)
    # Stored only once the reply has started: a refused request leaves no dangling turn.
    await store.append(conversation.id, "user", body.content)
    if body.stream:
        events = streamed_reply(run, store, conversation.id)
        return sse_response(events, {}, lead=len(run.streams))
    reply = await collect_reply(run, store, conversation.id)
    return json_response(reply.public())


async def list_messages(request: Request) -> Response:
    conversation = await _owned(request)
    after, limit = page_params(request)
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("'order' must be 'asc' or 'desc'.", param="order")
    found = await store_of(request).messages(conversation.id, after, limit + 1, order == "desc")
    return json_response(page([message.public() for message in found], limit))


async def _owned(request: Request) -> Conversation:
    conversation_id = request.path_params["conversation_id"]
    found = await store_of(request).get(conversation_id, identity_of(request).org_id)
    if found is None:
        raise NotFoundError(f"No such conversation: {conversation_id}", param="conversation_id")
    return found
