"""Admin routes (``admin`` scope): organizations, keys, tiers and usage of everyone."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from api.admin_checks import check_models, check_tier
from api.errors import InvalidRequestError, NotFoundError
from api.gateway import gateway_of
from api.requests import parse_body
from api.responses import json_response
from api.routes.usage import usage_query
from api.schemas.admin import CreateKey, CreateOrganization
from api.settings import TierLimits
from api.storage.keys import NewKey
from api.storage.time import utcnow


async def create_organization(request: Request) -> Response:
    gateway = gateway_of(request.scope)
    body = await parse_body(request, CreateOrganization, 64 * 1024)
    if await gateway.keys.org_by_name(body.name) is not None:
        raise InvalidRequestError(f"An organization named {body.name!r} exists.", param="name")
    tier = body.tier or gateway.settings.limits.default_tier
    await check_tier(tier, gateway.settings, gateway.keys)
    org = await gateway.keys.create_org(body.name, tier)
    return json_response(_org(asdict(org)), status_code=201)


async def list_organizations(request: Request) -> Response:
    orgs = await gateway_of(request.scope).keys.list_orgs()
    return json_response({"object": "list", "data": [_org(asdict(org)) for org in orgs]})


async def create_key(request: Request) -> Response:
    """The new key is in the response once; only its hash is stored."""
    gateway = gateway_of(request.scope)
    body = await parse_body(request, CreateKey, 64 * 1024)
    if body.tier is not None:
        await check_tier(body.tier, gateway.settings, gateway.keys)
    if body.models is not None:
        check_models(body.models, gateway.settings, "models")
    expires = None if body.expires_in_days is None else utcnow() + timedelta(body.expires_in_days)
    new = NewKey(body.org_id, body.name, body.scopes, body.tier, body.models, expires)
    try:
        key, record = await gateway.keys.create_key(new)
    except LookupError:
        raise NotFoundError(f"No organization {body.org_id!r}.", param="org_id") from None
    return json_response({**record.public(), "key": key}, status_code=201)


async def list_keys(request: Request) -> Response:
    records = await gateway_of(request.scope).keys.list_keys(request.query_params.get("org_id"))
    return json_response({"object": "list", "data": [record.public() for record in records]})


async def revoke_key(request: Request) -> Response:
    """Takes effect on the next request on every replica (see ``Gateway.revoke``)."""
    gateway = gateway_of(request.scope)
    record = await gateway.keys.revoke(request.path_params["key_id"])
    if record is None:
        raise NotFoundError(f"No API key {request.path_params['key_id']!r}.")
    await gateway.revoke(record.id, record.org_id)
    return json_response(record.public())


async def set_tier(request: Request) -> Response:
    gateway = gateway_of(request.scope)
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequestError("The tier's limits are required as a JSON object.")
    try:
        # strict: a JSON true is not a limit of 1 (settings files stay lax, this body is not).
        limits = TierLimits.model_validate_json(raw, strict=True)
    except ValueError as exc:
        raise InvalidRequestError(f"Invalid tier limits: {exc}") from None
    check_models(limits.models, gateway.settings, "models")
    await gateway.keys.set_tier(request.path_params["name"], limits.model_dump())
    return json_response({"name": request.path_params["name"], **limits.model_dump()})


async def usage(request: Request) -> Response:
    """Usage of any key or organization, grouped by day, model, org_id and/or key_id."""
    params = request.query_params
    rows = await usage_query(
        request,
        default_group="day,org_id,model",
        org_id=params.get("org_id"),
        key_id=params.get("key_id"),
        model=params.get("model"),
    )
    return json_response({"object": "list", "data": rows})


def _org(fields: dict[str, object]) -> dict[str, object]:
    created = fields.pop("created_at")
    return {**fields, "object": "organization", "created_at": int(created.timestamp())}  # type: ignore[attr-defined]
