"""``/v1/conversations`` as OpenAI has it: conversations and their items.

Create (with up to 20 items), retrieve, update the metadata, delete; add up to 20 items,
list them (``after``, ``limit``, ``order``, default newest first), retrieve and delete one.
Conversations belong to the key's organization: another organization gets 404 for every
conversation and item id. ``model`` and ``system_prompt`` on create are the deprecated
``/messages`` routes' fields: accepted, and answered with Deprecation headers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.conversations.items import input_items
from api.conversations.legacy import text_message
from api.deprecation import BUILT_IN, MESSAGES_ROUTE, deprecation_headers
from api.errors import InvalidRequestError, NotFoundError
from api.gateway import gateway_of
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.routes.pages import page, page_params
from api.schemas.conversations import CreateConversation, CreateItems, UpdateConversation
from api.services import services_of
from api.settings import ModelKind
from api.storage import conversation_items as store

T = TypeVar("T")

_BODY_BYTES = 1024 * 1024
# What ``include`` may name (openai 3.63.0's ResponseIncludable). None of them adds anything to
# the items this server stores (text only, no logprobs kept), so they are accepted and checked.
INCLUDABLE = frozenset(
    {
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    }
)


def db_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = gateway_of(request.scope).engine
    return engine


async def owned(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; a conversation the caller's organization lacks is a 404."""
    try:
        return await work
    except store.ConversationNotFound:
        conversation_id = request.path_params["conversation_id"]
        raise NotFoundError(
            f"Conversation with id '{conversation_id}' not found.", param="conversation_id"
        ) from None


def org_of(request: Request) -> str:
    return identity_of(request).org_id


async def create_conversation(request: Request) -> Response:
    identity = identity_of(request)
    body = await parse_body(request, CreateConversation, _BODY_BYTES)
    items = input_items(body.items if body.items is not None else [])
    headers: dict[str, str] = {}
    if body.model is not None or body.system_prompt is not None:
        routes = services_of(request).settings.deprecated_routes
        headers = deprecation_headers(routes.get(MESSAGES_ROUTE, BUILT_IN[MESSAGES_ROUTE]))
    if body.model is not None:
        services_of(request).registry.resolve(body.model, ModelKind.CHAT)
    if body.system_prompt:
        items = [text_message("system", body.system_prompt), *items]
    conversation = await store.create_conversation(
        db_of(request),
        identity.org_id,
        body.metadata,
        items,
        key_id=identity.key_id,
        model=body.model,
    )
    return json_response(conversation.public(), headers=headers)


async def retrieve_conversation(request: Request) -> Response:
    found = await owned(
        request, store.get_conversation(db_of(request), org_of(request), _cid(request))
    )
    return json_response(found.public())


async def update_conversation(request: Request) -> Response:
    body = await parse_body(request, UpdateConversation, _BODY_BYTES)
    updated = await owned(
        request,
        store.update_metadata(db_of(request), org_of(request), _cid(request), body.metadata),
    )
    return json_response(updated.public())


async def list_conversations(request: Request) -> Response:
    after, limit = page_params(request)
    found = await store.list_conversations(db_of(request), org_of(request), after, limit + 1)
    return json_response(page([conversation.public() for conversation in found], limit))


async def delete_conversation(request: Request) -> Response:
    conversation_id = _cid(request)
    await owned(
        request, store.delete_conversation(db_of(request), org_of(request), conversation_id)
    )
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


async def create_items(request: Request) -> Response:
    include_param(request)
    body = await parse_body(request, CreateItems, services_of(request).settings.max_request_bytes)
    items = input_items(body.items, at_least_one=True)
    try:
        stored = await owned(
            request, store.append_items(db_of(request), org_of(request), _cid(request), items)
        )
    except store.ItemIdTaken as taken:
        raise InvalidRequestError(str(taken), param=f"items[{taken.index}].id") from None
    return json_response(page([item.public() for item in stored], len(stored)))


async def list_items(request: Request) -> Response:
    include_param(request)
    after, limit = page_params(request)
    order = order_param(request, "desc")
    found = await owned(
        request,
        store.list_items(db_of(request), org_of(request), _cid(request), after, limit + 1, order),
    )
    if found is None:
        raise InvalidRequestError(
            f"No item '{after}' in this conversation to list after.",
            param="after",
            code="invalid_value",
        )
    return json_response(page([item.public() for item in found], limit))


async def retrieve_item(request: Request) -> Response:
    include_param(request)
    item = await owned(
        request, store.get_item(db_of(request), org_of(request), _cid(request), _item_id(request))
    )
    if item is None:
        raise _no_item(request)
    return json_response(item.public())


async def delete_item(request: Request) -> Response:
    db, org_id, conversation_id = db_of(request), org_of(request), _cid(request)
    deleted = await owned(
        request, store.delete_item(db, org_id, conversation_id, _item_id(request))
    )
    if not deleted:
        raise _no_item(request)
    # OpenAI answers with the conversation the item was deleted from.
    conversation = await owned(request, store.get_conversation(db, org_id, conversation_id))
    return json_response(conversation.public())


def order_param(request: Request, default: store.Order) -> store.Order:
    order = request.query_params.get("order", default)
    if order == "asc":
        return "asc"
    if order == "desc":
        return "desc"
    raise InvalidRequestError(
        "'order' must be 'asc' or 'desc'.", param="order", code="invalid_value"
    )


def include_param(request: Request) -> list[str]:
    """``include`` (repeated, or ``include[]`` as some clients send it), each value checked."""
    values = [
        *request.query_params.getlist("include"),
        *request.query_params.getlist("include[]"),
    ]
    for value in values:
        if value not in INCLUDABLE:
            raise InvalidRequestError(
                f"Invalid value for 'include': {value!r} is not one of "
                f"{', '.join(sorted(INCLUDABLE))}.",
                param="include",
                code="invalid_value",
            )
    return values


def _cid(request: Request) -> str:
    conversation_id: str = request.path_params["conversation_id"]
    return conversation_id


def _item_id(request: Request) -> str:
    item_id: str = request.path_params["item_id"]
    return item_id


def _no_item(request: Request) -> NotFoundError:
    return NotFoundError(f"Item with id '{_item_id(request)}' not found.", param="item_id")
