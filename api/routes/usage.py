"""``GET /v1/usage``: the calling key's usage per day and model (from the daily roll-up)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.errors import InvalidRequestError
from api.gateway import gateway_of
from api.http.json_response import json_response
from api.storage.usage import GROUPS
from api.usage.pricing import format_usd

MAX_DAYS = 366


async def own_usage(request: Request) -> Response:
    identity = identity_of(request)
    # The organization too: a token's key id (issuer and subject) may act in several.
    rows = await usage_query(
        request, default_group="day,model", key_id=identity.key_id, org_id=identity.org_id
    )
    return json_response({"object": "list", "key_id": identity.key_id, "data": rows})


async def usage_query(
    request: Request, default_group: str, **filters: str | None
) -> list[dict[str, Any]]:
    """Rows for ``start``..``end`` (``YYYY-MM-DD``, default the last 30 days) by ``group_by``."""
    params = request.query_params
    group_by = [g for g in params.get("group_by", default_group).split(",") if g]
    if not group_by or any(g not in GROUPS for g in group_by):
        raise InvalidRequestError(
            f"group_by takes a list of {', '.join(GROUPS)}.", param="group_by"
        )
    end = _day(params.get("end"), datetime.now(UTC).date(), "end")
    start = _day(params.get("start"), end - timedelta(days=29), "start")
    if start > end or (end - start).days > MAX_DAYS:
        raise InvalidRequestError(
            f"Give start <= end, at most {MAX_DAYS} days apart.", param="start"
        )
    rows = await gateway_of(request.scope).usage.summary(
        group_by, start.isoformat(), end.isoformat(), **filters
    )
    return [{**row, "cost_usd": format_usd(row["cost_nanos"])} for row in rows]


def _day(value: str | None, default: date, name: str) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"'{name}' must be a date like 2025-01-31.", param=name) from None
