"""``after`` / ``limit`` query parameters of the cursor-paginated listings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from api.errors import InvalidRequestError


def page_params(request: Request, default: int = 20, maximum: int = 100) -> tuple[str | None, int]:
    params = request.query_params
    raw = params.get("limit")
    if raw is None:
        limit = default
    elif raw.isascii() and raw.isdigit() and 1 <= int(raw) <= maximum:
        limit = int(raw)
    else:
        raise InvalidRequestError(
            f"'limit' must be an integer from 1 to {maximum}.", param="limit", code="invalid_value"
        )
    return params.get("after") or None, limit


def page(items: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A list object from ``limit + 1`` fetched items (the extra one only says: more)."""
    shown = list(items[:limit])
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }
