"""Admin routes: the platform operator's (every organization) and an organization's admin's.

``/v1/admin`` needs the ``admin`` scope; ``api/auth/roles.py`` confines an organization's admin
to its own organization (others answer 404) and keeps organizations and tiers to the
``operator`` (403).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from api.admin_checks import check_models, check_tier
from api.auth.identity import Identity, identity_of
from api.auth.roles import (
    check_grantable_scopes,
    granted_expiry,
    granted_models,
    org_in_reach,
    require_operator,
    tier_within,
)
from api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from api.gateway import Gateway, gateway_of
from api.http.json_response import json_response
from api.http.request_body import parse_body, read_body
from api.routes.usage import usage_query
from api.schemas.admin import CreateKey, CreateOrganization
from api.settings import TierLimits
from api.storage.keys import KeyRecord, NewKey, Organization
from api.storage.time import utcnow


async def create_organization(request: Request) -> Response:
    require_operator(identity_of(request), "Creating an organization")
    gateway = gateway_of(request.scope)
    body = await parse_body(request, CreateOrganization, _admin_body_bytes(request))
    if await gateway.keys.org_by_name(body.name) is not None:
        raise InvalidRequestError(f"An organization named {body.name!r} exists.", param="name")
    tier = body.tier or gateway.settings.limits.default_tier
    await check_tier(tier, gateway.settings, gateway.keys)
    org = await gateway.keys.create_org(body.name, tier)
    return json_response(_org(asdict(org)), status_code=201)


async def list_organizations(request: Request) -> Response:
    """Every organization for the operator; an organization's admin sees its own."""
    identity = identity_of(request)
    keys = gateway_of(request.scope).keys
    if identity.is_operator:
        orgs = await keys.list_orgs()
    else:
        own = await keys.org(identity.org_id)
        orgs = [] if own is None else [own]
    return json_response({"object": "list", "data": [_org(asdict(org)) for org in orgs]})


async def create_key(request: Request) -> Response:
    """The new key is in the response once; only its hash is stored."""
    gateway = gateway_of(request.scope)
    body = await parse_body(request, CreateKey, _admin_body_bytes(request))
    identity = identity_of(request)
    org = await _org_in_reach(gateway, identity, body.org_id or identity.org_id)
    check_grantable_scopes(identity, body.scopes)
    tier = body.tier or org.tier
    if body.tier is not None:
        await check_tier(body.tier, gateway.settings, gateway.keys)
    if not identity.is_operator:
        await _check_tier_within(gateway, tier, org)
    if body.models is not None:
        check_models(body.models, gateway.settings, "models")
    expires = None if body.expires_in_days is None else utcnow() + timedelta(body.expires_in_days)
    new = NewKey(
        org.id,
        body.name,
        body.scopes,
        tier,
        granted_models(identity, body.models),
        granted_expiry(identity, expires),
    )
    key, record = await gateway.keys.create_key(new)
    return json_response({**record.public(), "key": key}, status_code=201)


async def list_keys(request: Request) -> Response:
    """Keys of one organization (``org_id``) or, for the operator, of every one."""
    org_id = org_in_reach(identity_of(request), request.query_params.get("org_id"))
    records = await gateway_of(request.scope).keys.list_keys(org_id)
    return json_response({"object": "list", "data": [record.public() for record in records]})


async def revoke_key(request: Request) -> Response:
    """Takes effect on the next request on every replica (see ``Gateway.revoke``)."""
    gateway = gateway_of(request.scope)
    key_id = request.path_params["key_id"]
    identity = identity_of(request)
    if not identity.is_operator:
        found = await _key_in_reach(gateway, identity, key_id)
        check_grantable_scopes(identity, found.scopes, "revoke a key with")
    record = await gateway.keys.revoke(key_id, org_in_reach(identity, None))
    if record is None:
        raise NotFoundError(f"No API key {key_id!r}.")
    await gateway.revoke(record.id, record.org_id)
    return json_response(record.public())


async def set_tier(request: Request) -> Response:
    """Tiers are shared by every organization: the operator's alone."""
    require_operator(identity_of(request), "Changing a tier")
    gateway = gateway_of(request.scope)
    raw = await read_body(request, _admin_body_bytes(request))
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
    """Usage grouped by day, model, org_id and/or key_id: of any organization or key for the
    operator, of its own organization's for an organization's admin."""
    params = request.query_params
    identity = identity_of(request)
    key_id = params.get("key_id")
    if key_id is not None and not identity.is_operator:
        await _key_in_reach(gateway_of(request.scope), identity, key_id)
    rows = await usage_query(
        request,
        default_group="day,org_id,model",
        org_id=org_in_reach(identity, params.get("org_id")),
        key_id=key_id,
        model=params.get("model"),
    )
    return json_response({"object": "list", "data": rows})


async def _org_in_reach(gateway: Gateway, identity: Identity, org_id: str) -> Organization:
    """The organization a key is made for: 404 when it does not exist or is out of reach."""
    org = await gateway.keys.org(org_in_reach(identity, org_id) or org_id)
    if org is None:
        raise NotFoundError(f"No organization {org_id!r}.", param="org_id")
    return org


async def _key_in_reach(gateway: Gateway, identity: Identity, key_id: str) -> KeyRecord:
    """A key of the caller's organization; any other is 404 like one that does not exist."""
    record = await gateway.keys.key(key_id, identity.org_id)
    if record is None:
        raise NotFoundError(f"No API key {key_id!r}.", param="key_id")
    return record


async def _check_tier_within(gateway: Gateway, tier: str, org: Organization) -> None:
    """An organization's admin makes keys no looser than its organization's tier."""
    limits = await gateway.resolver.tiers(tier, org.tier)
    if not tier_within(limits[tier], limits[org.tier]):
        raise PermissionDeniedError(
            f"The tier {tier!r} allows more than the organization's tier {org.tier!r}.",
            param="tier",
        )


def _org(fields: dict[str, object]) -> dict[str, object]:
    created = fields.pop("created_at")
    return {**fields, "object": "organization", "created_at": int(created.timestamp())}  # type: ignore[attr-defined]


def _admin_body_bytes(request: Request) -> int:
    """Admin documents are small JSON: anything larger is refused (413) before it is read."""
    return gateway_of(request.scope).settings.http.max_admin_body_bytes
