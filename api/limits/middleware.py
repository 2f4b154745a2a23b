"""Admission: rate limits, quotas and concurrency before a request runs, settlement after.

Pure ASGI middleware, so it owns the whole response lifetime, streaming included: the
reservation (estimated prompt tokens + max_tokens) is taken before the route runs and settled
against the real usage when the response ends, however it ends. The rate-limit headers go out
with the response start, before the first SSE byte.
"""

from __future__ import annotations

from functools import partial

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.middleware import identity_in
from api.errors import APIError
from api.gateway import gateway_of, services_in
from api.http.rejections import reject
from api.limits.body import peek_body
from api.limits.estimate import estimate
from api.limits.gate import admit, settle
from api.limits.headers import rejection
from api.limits.rules import Demand, plan_ip
from api.usage.meter import RequestUsage
from api.usage.middleware import journal_admission


class AdmissionMiddleware:
    """Checks every authenticated request against its key's and organization's limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = identity_in(scope)
        if scope["type"] != "http" or identity is None:
            await self.app(scope, receive, send)
            return
        gateway = gateway_of(scope)
        demand, receive = await _demand(scope, receive)
        try:
            admitted = await admit(gateway, identity, demand)
        except APIError as error:
            await reject(error, scope, receive, send)
            return
        usage: RequestUsage = scope.setdefault("state", {}).setdefault("usage", RequestUsage())
        usage.model, usage.reserved_tokens = demand.model, demand.tokens
        usage.settlement = partial(settle, gateway, admitted)
        # Journaled with its plan and lease: a crash from here on still settles both.
        request_id = scope["state"].get("request_id", "")
        journal_admission(
            gateway,
            scope["path"],
            identity,
            usage,
            request_id,
            admitted.plan,
            admitted.lease_id,
        )
        try:
            await self.app(scope, receive, _with_headers(send, admitted.headers))
        finally:
            if usage.slot is not None:
                usage.slot.settling()  # from here on this request settles its own reservation
            if not usage.handed_off:
                await settle(gateway, admitted, usage.total())


class IpLimitMiddleware:
    """Requests per minute per client address, before authentication (blunts floods)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health/"):
            await self.app(scope, receive, send)
            return
        gateway = gateway_of(scope)
        limit = gateway.settings.limits.ip_requests_per_minute
        if limit is None:
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        plan = plan_ip(address, limit)
        decision = await gateway.limiter.admit(plan, "-")
        if not decision.allowed:
            gateway.metrics.rate_limited(None, decision.blocked)
            await reject(rejection(decision, {}), scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _demand(scope: Scope, receive: Receive) -> tuple[Demand, Receive]:
    """Model and token reservation of a POST to the OpenAI API (its body is replayed)."""
    if scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
        return Demand(), receive
    services = services_in(scope)
    body, receive = await peek_body(receive, services.settings.max_request_bytes)
    return estimate(body or b"", services.registry), receive


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    # Appended as raw pairs: only this middleware sets these names, and MutableHeaders'
    # replace-by-name scans the whole list once per header, on every response.
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *raw]
        await send(message)

    return send_with_headers
