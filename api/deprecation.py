"""Deprecation (RFC 9745) and Sunset (RFC 8594) headers for models and routes.

A deprecated route is named by its path or by its route template (``{name}`` stands for one
path segment). ``BUILT_IN`` routes are deprecated by this release; the settings' own
``deprecated_routes`` may change their notices.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import DeprecationNotice, ServedModel

# The pre-OpenAI conversation messages, replaced by /v1/conversations/{id}/items (issue 25).
MESSAGES_ROUTE = "/v1/conversations/{conversation_id}/messages"
BUILT_IN: dict[str, DeprecationNotice] = {
    MESSAGES_ROUTE: DeprecationNotice(
        since=datetime(2026, 12, 8, tzinfo=UTC),
        sunset=datetime(2027, 6, 30, tzinfo=UTC),
        link="https://platform.openai.com/docs/api-reference/conversations",
    )
}


def deprecation_headers(notice: DeprecationNotice) -> dict[str, str]:
    headers = {"Deprecation": f"@{int(_utc(notice.since).timestamp())}"}
    if notice.sunset is not None:
        headers["Sunset"] = format_datetime(_utc(notice.sunset), usegmt=True)
    if notice.link is not None:
        headers["Link"] = f'<{notice.link}>; rel="deprecation"'
    return headers


def model_headers(model: ServedModel, requested_name: str) -> dict[str, str]:
    """Headers for a response to a request that named ``requested_name``."""
    notice = model.deprecated_names.get(requested_name)
    return deprecation_headers(notice) if notice is not None else {}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class DeprecatedRoutesMiddleware:
    """Adds the headers to every response of a deprecated route (pure ASGI: streams too)."""

    def __init__(self, app: ASGIApp, routes: dict[str, DeprecationNotice]) -> None:
        self.app = app
        notices = {**BUILT_IN, **routes}
        self._headers = {
            path: deprecation_headers(notice) for path, notice in notices.items() if "{" not in path
        }
        self._templates = [
            (_template(path), deprecation_headers(notice))
            for path, notice in notices.items()
            if "{" in path
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self._match(scope["path"]) if scope["type"] == "http" else None
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _match(self, path: str) -> dict[str, str] | None:
        found = self._headers.get(path)
        if found is None:
            found = next((h for pattern, h in self._templates if pattern.fullmatch(path)), None)
        return found


def _template(path: str) -> re.Pattern[str]:
    """``/a/{id}/b`` as a pattern: each ``{name}`` matches one non-empty path segment."""
    parts = re.split(r"\{[^/{}]+\}", path)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))
