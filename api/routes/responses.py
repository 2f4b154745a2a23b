"""``/v1/responses``: create (JSON, streamed or in the background), retrieve (or follow a
background stream), delete, cancel, list input items, count input tokens.

Responses belong to the key's organization; another organization gets 404. See
``api.responses`` for how a response is generated, stored and run in the background.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.chat.run import ChatRun
from api.deprecation import model_headers
from api.errors import InvalidRequestError, NotFoundError
from api.gateway import gateway_of
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.http.sse import EventStreamResponse
from api.responses.accounting import background_usage
from api.responses.background import BackgroundRunner, follow
from api.responses.counting import count_input_tokens
from api.responses.foreground import collect, streamed
from api.responses.objects import response_json
from api.responses.run import Owner, new_record, start_generation
from api.routes.pages import page, page_params
from api.schemas.responses import CountInputTokens, CreateResponse
from api.services import request_id_of, services_of
from api.storage import responses as store
from api.storage.responses import RUNNING, ResponseRecord
from api.usage.meter import usage_of


def runner_of(request: Request) -> BackgroundRunner:
    runner: BackgroundRunner = request.app.state.responses
    return runner


def _db(request: Request) -> AsyncEngine:
    return gateway_of(request.scope).engine


async def create_response(request: Request) -> Response:
    services, db = services_of(request), _db(request)
    identity = identity_of(request)
    body = await parse_body(request, CreateResponse, services.settings.max_request_bytes)
    record = await new_record(db, services, Owner(identity.org_id, identity.key_id), body)
    request_id = request_id_of(request)
    run = await start_generation(services, body, record, request_id)
    headers = model_headers(run.model, body.model)
    if body.background:
        gateway = gateway_of(request.scope)
        # The tokens are generated after this request ends: the run records them and settles
        # the request's reservation against them, so background work counts against limits.
        settle = usage_of(request).hand_off()

        async def ended(record: ResponseRecord, run: ChatRun) -> None:
            background_usage(gateway, request_id, record, run)
            if settle is not None:
                await settle(run.states[0].prompt_tokens + run.states[0].completion_tokens)

        await runner_of(request).submit(record, run, ended)
        if body.stream:
            events = follow(db, runner_of(request), identity.org_id, record.id, -1)
            return EventStreamResponse(events, headers, end=b"")
        return json_response(response_json(record), headers=headers)
    usage_of(request).track(run.states)
    if body.stream:
        return EventStreamResponse(streamed(db, run, record), headers, end=b"")
    await collect(db, run, record)
    return json_response(response_json(record), headers=headers)


async def retrieve_response(request: Request) -> Response:
    record = await _owned(request)
    params = request.query_params
    if params.get("stream") != "true":
        return json_response(response_json(record))
    if not record.background:
        raise InvalidRequestError(
            "Only background responses can be streamed again; retrieve this one without 'stream'.",
            param="stream",
            code="invalid_value",
        )
    after = _int_param(params.get("starting_after"), "starting_after", default=-1)
    events = follow(_db(request), runner_of(request), record.org_id, record.id, after)
    return EventStreamResponse(events, {}, end=b"")


async def delete_response(request: Request) -> Response:
    record = await _owned(request)
    if record.status in RUNNING:
        await store.cancel(_db(request), record.org_id, record.id)
        runner_of(request).cancel_local(record.id)
    await store.delete_response(_db(request), record.org_id, record.id)
    return json_response({"id": record.id, "object": "response.deleted", "deleted": True})


async def cancel_response(request: Request) -> Response:
    record = await _owned(request)
    if not record.background:
        raise InvalidRequestError(
            "Only background responses can be cancelled.", param="response_id", code="invalid_value"
        )
    if record.status not in (*RUNNING, "cancelled"):
        raise InvalidRequestError(
            f"Cannot cancel a response with status '{record.status}'.",
            param="response_id",
            code="invalid_value",
        )
    found = await store.cancel(_db(request), record.org_id, record.id)
    runner_of(request).cancel_local(record.id)
    return json_response(response_json(found or record))


async def list_input_items(request: Request) -> Response:
    record = await _owned(request)
    after, limit = page_params(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("'order' must be 'asc' or 'desc'.", param="order")
    items = list(record.context if order == "asc" else reversed(record.context))
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise NotFoundError(f"No input item '{after}' in this response.", param="after")
        items = items[ids.index(after) + 1 :]
    return json_response(page(items[: limit + 1], limit))


async def count_tokens(request: Request) -> Response:
    services = services_of(request)
    identity = identity_of(request)
    body = await parse_body(request, CountInputTokens, services.settings.max_request_bytes)
    owner = Owner(identity.org_id, identity.key_id)
    count = await count_input_tokens(_db(request), services, owner, body, request_id_of(request))
    return json_response({"object": "response.input_tokens", "input_tokens": count})


async def _owned(request: Request) -> ResponseRecord:
    response_id = request.path_params["response_id"]
    found = await store.get(_db(request), identity_of(request).org_id, response_id)
    if found is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")
    return found


def _int_param(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit():
        return int(raw)
    raise InvalidRequestError(
        f"'{name}' must be a non-negative integer.", param=name, code="invalid_value"
    )
