"""One usage record per authenticated request, written when the response is over.

The record is taken in ``finally``: a stream the client cut short still records the tokens
generated until then. Non-streaming replies also carry their cost in ``x-request-cost``
(USD); a stream's cost is only known after its headers are gone, so it is in the record only.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.identity import Identity
from api.auth.middleware import identity_in
from api.gateway import gateway_of
from api.ids import unique_hex
from api.storage.time import utcnow
from api.usage.meter import RequestUsage
from api.usage.pricing import cost_nanos, format_usd
from api.usage.records import UsageRecord

COST_HEADER = "x-request-cost"


class UsageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = identity_in(scope)
        if scope["type"] != "http" or identity is None:
            await self.app(scope, receive, send)
            return
        usage: RequestUsage = scope.setdefault("state", {}).setdefault("usage", RequestUsage())
        started = time.perf_counter()
        status = 500

        async def send_with_cost(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if not headers.get("content-type", "").startswith("text/event-stream"):
                    headers[COST_HEADER] = format_usd(self._cost(scope, usage))
            await send(message)

        try:
            await self.app(scope, receive, send_with_cost)
        finally:
            request_id = scope["state"].get("request_id", "")
            record_usage(scope, identity, usage, request_id, status, started)

    @staticmethod
    def _cost(scope: Scope, usage: RequestUsage) -> int:
        prices = gateway_of(scope).settings.usage.prices
        return cost_nanos(
            prices, usage.model, usage.prompt(), usage.completion(), usage.cached_tokens
        )


def record_usage(
    scope: Scope,
    identity: Identity,
    usage: RequestUsage,
    request_id: str,
    status: int,
    started: float,
) -> None:
    """Queue the usage record of one request (or one WebSocket message) and count its tokens."""
    gateway = gateway_of(scope)
    gateway.recorder.record(
        UsageRecord(
            id=unique_hex(),
            request_id=request_id,
            created_at=utcnow(),
            key_id=identity.key_id,
            org_id=identity.org_id,
            model=usage.model or "",
            endpoint=scope["path"][:64],
            status=status,
            prompt_tokens=usage.prompt(),
            completion_tokens=usage.completion(),
            cached_tokens=usage.cached_tokens,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_nanos=UsageMiddleware._cost(scope, usage),
        )
    )
    gateway.metrics.tokens(usage.model, usage.prompt(), usage.completion())
