"""Prometheus metrics, owned by the application (one registry per app, no globals).

Labels are bounded: the endpoint is the matched route template, the model is a configured
model id (or ``-``), the status an HTTP code. Keys and organizations are never labels.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits.rules import Rule

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "api_requests", "HTTP requests", ["endpoint", "model", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "Time to the last byte",
            ["endpoint", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "api_time_to_first_token_seconds",
            "Time to the first streamed byte",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.token_count = Counter(
            "api_tokens", "Tokens processed", ["model", "direction"], registry=self.registry
        )
        self.rejections = Counter(
            "api_rate_limited",
            "Requests refused by a limit",
            ["model", "limit"],
            registry=self.registry,
        )

    def tokens(self, model: str | None, prompt: int, completion: int) -> None:
        if prompt:
            self.token_count.labels(model or "-", "prompt").inc(prompt)
        if completion:
            self.token_count.labels(model or "-", "completion").inc(completion)

    def rate_limited(self, model: str | None, rule: Rule | None) -> None:
        limit = f"{rule.kind}:{rule.measure}" if rule else "unknown"
        self.rejections.labels(model or "-", limit).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every request; TTFT is the first body byte of a stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, streaming, first = 500, False, None

        async def observe(message: Message) -> None:
            nonlocal status, streaming, first
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = any(
                    k == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message["headers"]
                )
            elif first is None and message.get("body"):
                first = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._observe(
                scope, status, time.perf_counter() - started, first if streaming else None
            )

    @staticmethod
    def _observe(scope: Scope, status: int, elapsed: float, ttft: float | None) -> None:
        gateway = getattr(scope["app"].state, "gateway", None)
        if gateway is None:
            return
        metrics: Metrics = gateway.metrics
        usage = scope.get("state", {}).get("usage")
        model = (usage.model if usage is not None else None) or "-"
        endpoint = route_template(scope)
        metrics.requests.labels(endpoint, model, str(status)).inc()
        metrics.latency.labels(endpoint, model).observe(elapsed)
        if ttft is not None:
            metrics.ttft.labels(model).observe(ttft)


def route_template(scope: Scope) -> str:
    for route in scope["app"].routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics`` in Prometheus' text format (needs the ``metrics`` or ``operator`` scope)."""
    metrics: Metrics = request.app.state.gateway.metrics
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")
