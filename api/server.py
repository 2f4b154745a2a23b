"""Serving the app with uvicorn, with a graceful shutdown that drains instead of cutting.

On SIGTERM/SIGINT uvicorn stops accepting connections and waits up to
``timeout_graceful_shutdown`` for running requests before cancelling them. The app is told
the moment shutdown begins, so it refuses new work on open connections, reports itself not
ready, and ends streams still running near the drain timeout with an SSE error event and
``[DONE]`` instead of a cut connection.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from api.app import begin_drain
from api.http.edge import edge_protocol
from api.settings import Settings


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` that calls ``on_shutdown`` before it starts waiting for requests."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


def serve(app: Starlette, settings: Settings) -> None:
    """Run ``app`` until a signal arrives, then drain for up to the configured timeout."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # api.logs.AccessLogMiddleware writes the access line (JSON, with the request id);
        # uvicorn's own would be a second, plain-text line per request on the hot path.
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.resilience.drain_timeout_s),
        # The HTTP edge: header/body timeouts and the header size limit (api/http/edge.py),
        # idle keep-alive connections closed, connections at once bounded (503 beyond).
        http=edge_protocol(settings.http),
        timeout_keep_alive=settings.http.keep_alive_timeout_s,
        limit_concurrency=settings.http.max_connections,
    )
    DrainingServer(config, on_shutdown=lambda: begin_drain(app)).run()
