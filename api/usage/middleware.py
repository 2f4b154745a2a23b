"""One usage record per authenticated request, written when the response is over.

The record is taken in ``finally``: a stream the client cut short still records the tokens
generated until then. Between admission (``journal_admission``) and the record, the tokens
counted so far are journaled before each body message is sent, so a crash of the process still
settles the request from what its client got (``api.usage.interrupted``).

Non-streaming replies also carry their cost in ``x-request-cost`` (USD); a stream's cost is
only known after its headers are gone, so it is in the record only.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.identity import Identity
from api.auth.middleware import identity_in
from api.gateway import Gateway, gateway_of
from api.ids import unique_hex
from api.limits.rules import Plan
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
        if scope["type"] == "websocket" and identity is not None:
            await self.app(scope, receive, _journaling_messages(scope, send))
            return
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
                if usage.slot is not None:
                    usage.slot.status(status)
            usage.delivering()
            await send(message)

        try:
            await self.app(scope, receive, send_with_cost)
        finally:
            request_id = scope["state"].get("request_id", "")
            gateway = gateway_of(scope)
            record_usage(gateway, scope["path"], identity, usage, request_id, status, started)

    @staticmethod
    def _cost(scope: Scope, usage: RequestUsage) -> int:
        return request_cost(gateway_of(scope), usage)


def request_cost(gateway: Gateway, usage: RequestUsage) -> int:
    """What ``usage`` costs at the configured prices (nano-dollars)."""
    prices = gateway.settings.usage.prices
    return cost_nanos(prices, usage.model, usage.prompt(), usage.completion(), usage.cached_tokens)


def _journaling_messages(scope: Scope, send: Send) -> Send:
    """A WebSocket connection's sends, each journaling the progress of the message being
    answered (``api.limits.messages`` puts its meter in the scope's state)."""

    async def send_journaled(message: Message) -> None:
        if message["type"] == "websocket.send":
            usage: RequestUsage | None = scope["state"].get("usage")
            if usage is not None:
                usage.delivering()
        await send(message)

    return send_journaled


def record_usage(
    gateway: Gateway,
    endpoint: str,
    identity: Identity,
    usage: RequestUsage,
    request_id: str,
    status: int,
    started: float,
) -> None:
    """Queue the usage record of one request (one WebSocket message, one gRPC call) and count
    its tokens; ``endpoint`` is its path (an HTTP route, a gRPC method)."""
    gateway.recorder.record(
        UsageRecord(
            id=usage.record_id or unique_hex(),
            request_id=request_id,
            created_at=utcnow(),
            key_id=identity.key_id,
            org_id=identity.org_id,
            model=usage.model or "",
            endpoint=endpoint[:64],
            status=status,
            prompt_tokens=usage.prompt(),
            completion_tokens=usage.completion(),
            cached_tokens=usage.cached_tokens,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_nanos=request_cost(gateway, usage),
        )
    )
    if usage.slot is not None:
        usage.slot.release()  # after the record is journaled: never a moment with neither
    gateway.metrics.tokens(usage.model, usage.prompt(), usage.completion())


def journal_admission(
    gateway: Gateway,
    endpoint: str,
    identity: Identity,
    usage: RequestUsage,
    request_id: str,
    plan: Plan,
    lease: str,
    status: int = 0,
) -> None:
    """Journal an admitted request, so that a crash settles it (``api.usage.interrupted``):
    its record's id and identity now, its progress in ``usage.slot`` until it is recorded."""
    usage.record_id = unique_hex()
    fields = {
        "id": usage.record_id,
        "request_id": request_id,
        "created_at": utcnow().isoformat(),
        "key_id": identity.key_id,
        "org_id": identity.org_id,
        "model": usage.model or "",
        "endpoint": endpoint[:64],
    }
    usage.slot = gateway.recorder.admit(fields, plan, lease)
    if usage.slot is not None and status:
        usage.slot.status(status)  # a WebSocket message's status before anything is sent
