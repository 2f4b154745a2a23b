"""Starting a response: its context (earlier turns + input), then the chat generation.

The earlier turns come from ``previous_response_id`` (that response's context and output) or
from ``conversation`` (its stored items). The generation is a chat completion started by
``begin_chat``, like ``POST /v1/chat/completions``: limits, admission, content filter and
guided decoding all apply unchanged.

``truncation: "auto"`` drops the oldest items until the estimate fits the context (as
``api.conversations.history`` estimates), and drops half of what is left whenever Triton
still finds the prompt too long; ``"disabled"`` (the default) answers 400 instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from api.chat.run import ChatRun, begin_chat
from api.conversations.history import estimate_tokens
from api.errors import APIError, ContextLengthExceededError, InvalidRequestError, NotFoundError
from api.ids import unique_hex
from api.responses.items import Item, item_text, read_input
from api.responses.objects import echo_params
from api.responses.translate import chat_request, renamed
from api.schemas.responses import CreateResponse
from api.services import Services
from api.settings import ModelKind
from api.storage import conversation_items
from api.storage import responses as store
from api.storage.responses import RUNNING, ResponseRecord
from api.storage.time import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Owner:
    org_id: str
    key_id: str


async def new_record(
    db: AsyncEngine, services: Services, owner: Owner, body: CreateResponse
) -> ResponseRecord:
    """The response about to be generated (not stored yet), with its whole context."""
    services.registry.resolve(body.model, ModelKind.CHAT)
    inputs = read_input(body.input)
    history = await earlier_items(db, owner.org_id, body)
    if body.conversation_id() is not None:
        refuse_taken_ids(history, inputs)
    return build_record(services, owner, body, history, inputs)


def refuse_taken_ids(history: list[Item], inputs: list[Item]) -> None:
    """Input items join the conversation when the response ends; an id that it (or an
    earlier input item) already holds would fail there, after the generation: a 400 now."""
    taken = {item["id"] for item in history if item.get("id")}
    for index, item in enumerate(inputs):
        item_id = item.get("id")
        if not item_id:
            continue
        if item_id in taken:
            raise InvalidRequestError(
                f"An item with id '{item_id}' is already in this conversation.",
                param=f"input[{index}].id",
                code="invalid_value",
            )
        taken.add(item_id)


def build_record(
    services: Services,
    owner: Owner,
    body: CreateResponse,
    history: list[Item],
    inputs: list[Item] | None = None,
) -> ResponseRecord:
    inputs = read_input(body.input) if inputs is None else inputs
    now = utcnow()
    retention = timedelta(days=services.settings.responses.retention_days)
    return ResponseRecord(
        id=f"resp_{unique_hex(192)}",
        org_id=owner.org_id,
        key_id=owner.key_id,
        model=body.model,
        status="queued" if body.background else "in_progress",
        background=bool(body.background),
        params=echo_params(body),
        context=[*history, *inputs],
        input_count=len(inputs),
        created_at=now,
        expires_at=now + retention,
    )


async def earlier_items(db: AsyncEngine, org_id: str, body: CreateResponse) -> list[Item]:
    if body.previous_response_id is not None:
        previous = await store.get(db, org_id, body.previous_response_id)
        if previous is None:
            raise NotFoundError(
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
            )
        if previous.status in RUNNING:
            raise InvalidRequestError(
                f"Previous response '{previous.id}' is still {previous.status}; continue it "
                "once it has ended.",
                param="previous_response_id",
                code="invalid_value",
            )
        return [*previous.context, *previous.output]
    conversation_id = body.conversation_id()
    if conversation_id is None:
        if body.conversation is not None:
            raise InvalidRequestError(
                "'conversation' is a conversation id or {'id': ...}.",
                param="conversation",
                code="invalid_value",
            )
        return []
    try:
        stored = await conversation_items.list_items(
            db, org_id, conversation_id, limit=None, order="asc"
        )
    except conversation_items.ConversationNotFound:
        raise NotFoundError(
            f"Conversation with id '{conversation_id}' not found.", param="conversation"
        ) from None
    return [item.public() for item in stored or []]


async def start_generation(
    services: Services, body: CreateResponse, record: ResponseRecord, request_id: str
) -> ChatRun:
    """Begin the chat over the record's context (fewer items when truncation allows)."""
    items = record.context
    if body.truncation == "auto":
        items = fitting(record, body, services)
    while True:
        request = chat_request(body, items, stream=True)
        try:
            return await begin_chat(services, request, request_id)
        except ContextLengthExceededError as exc:
            shorter = _shorter(items, record.input_count) if body.truncation == "auto" else None
            if shorter is None:
                raise renamed(exc) from None
            logger.info("context over the model's: retrying with %d items", len(shorter))
            items = shorter
        except APIError as exc:
            raise renamed(exc) from None


def fitting(record: ResponseRecord, body: CreateResponse, services: Services) -> list[Item]:
    """The newest items whose estimate fits beside the reply's budget; the input is kept."""
    model = services.registry.resolve(body.model, ModelKind.CHAT)
    budget = model.context_length - (body.max_output_tokens or model.default_max_tokens)
    if body.instructions:
        budget -= estimate_tokens(body.instructions)
    items = record.context
    keep = len(items)
    for index in range(len(items) - 1, -1, -1):
        cost = estimate_tokens(item_text(items[index]))
        own_input = index >= len(items) - record.input_count
        if not own_input and cost > budget:
            break
        budget -= cost
        keep = index
    return _whole_turns(items[keep:])


def _shorter(items: list[Item], input_count: int) -> list[Item] | None:
    """Half the earlier items (the newest), or None when only the input is left."""
    earlier = len(items) - input_count
    if earlier <= 0:
        return None
    return _whole_turns(items[earlier - earlier // 2 :]) if earlier > 1 else items[earlier:]


def _whole_turns(items: list[Item]) -> list[Item]:
    """Never start with a call's output whose call was dropped: the template needs both."""
    start = 0
    while start < len(items) - 1 and items[start]["type"] == "function_call_output":
        start += 1
    return items[start:]
