"""Deprecation (RFC 9745) and Sunset (RFC 8594) headers for models and routes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import DeprecationNotice, ServedModel


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
        self._headers = {path: deprecation_headers(notice) for path, notice in routes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self._headers.get(scope["path"]) if scope["type"] == "http" else None
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
