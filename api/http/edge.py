"""The HTTP edge: what a connection may take from the server before the app sees a request.

uvicorn bounds none of it: a connection that never sends stays open, headers may trickle in
one byte at a time, a body may stall forever while the app waits on ``receive()``, and
httptools buffers a header of any size. ``edge_protocol`` returns uvicorn's httptools
protocol with those bounds (``HttpSettings``):

- the request line and headers arrive within ``header_timeout_s`` of the connection opening
  (or of the next request's first byte), else 408;
- they take at most ``max_header_bytes``, else 431;
- a body arrives within ``body_timeout_s`` plus one second per ``body_min_rate`` bytes
  received (Apache's mod_reqtimeout rule: a slow client must keep a minimum rate), else 408.

Refusals carry OpenAI's error envelope and close the connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import APIError
from api.settings import HttpSettings

logger = logging.getLogger(__name__)


class RequestTimeoutError(APIError):
    status_code = 408
    error_type = "invalid_request_error"
    code = "request_timeout"


class HeadersTooLargeError(APIError):
    status_code = 431
    error_type = "invalid_request_error"
    code = "request_header_fields_too_large"


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def edge_protocol(settings: HttpSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol bounded by ``settings`` (pass it as ``http=``)."""
    return type("EdgeProtocol", (EdgeProtocol,), {"edge": settings})


class EdgeProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with header and body timeouts and a header size limit."""

    edge: HttpSettings = HttpSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests or inside a request's line and headers
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_start = 0.0
        self._body_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
            self._arm_head_timer()
        super().data_received(data)
        # Still inside the headers: httptools buffers them whole, so stop before it grows.
        if self._in_head and self._head_bytes > self.edge.max_header_bytes:
            self._refuse_headers_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.edge.max_header_bytes:
            self._refuse_headers_too_large()
            return
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # a WebSocket handshake: the WebSocket protocol takes the connection over
        self._body_start, self._body_bytes = self.loop.time(), 0
        self._body_timer = self.loop.call_at(
            self._body_start + self.edge.body_timeout_s, self._body_timer_fired
        )

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._cancel_body_timer()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timers()
        super().handle_websocket_upgrade()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.edge.header_timeout_s, self._head_timer_fired
            )

    def _head_timer_fired(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's head while the previous response still streams: its
            # own wait starts once that response is over.
            self._arm_head_timer()
            return
        seconds = self.edge.header_timeout_s
        message = f"The request headers did not arrive within {seconds:g} s."
        self._refuse(RequestTimeoutError(message))

    def _body_timer_fired(self) -> None:
        self._body_timer = None
        now = self.loop.time()
        if self.flow.read_paused:
            # The app has not read what arrived yet: not the client's delay.
            self._body_start += 1.0
            self._body_timer = self.loop.call_at(now + 1.0, self._body_timer_fired)
            return
        deadline = (
            self._body_start + self.edge.body_timeout_s + self._body_bytes / self.edge.body_min_rate
        )
        if now < deadline:
            self._body_timer = self.loop.call_at(deadline, self._body_timer_fired)
            return
        self._refuse(
            RequestTimeoutError(
                f"The request body did not arrive in time ({self.edge.body_timeout_s:g} s plus "
                f"one second per {self.edge.body_min_rate} bytes)."
            ),
            in_body=True,
        )

    def _refuse_headers_too_large(self) -> None:
        limit = self.edge.max_header_bytes
        self._refuse(HeadersTooLargeError(f"The request headers exceed {limit} bytes."))

    def _refuse(self, error: APIError, in_body: bool = False) -> None:
        """Answer ``error`` and close the connection. The answer goes out only where no
        response has begun: for a body, none to this request (the app may have answered
        without reading it); for a head, none still streaming to the previous request."""
        self._refused = True
        self._cancel_timers()
        if self.transport.is_closing():
            return
        logger.info(
            "closing a connection: %s",
            error.message,
            extra={"client": self.client[0] if self.client else None},
        )
        if in_body:
            answer = not self.cycle.response_started
        else:
            answer = self.cycle is None or self.cycle.response_complete
        if answer:
            body = error.to_json()
            head = [
                b"HTTP/1.1 %d %s\r\n" % (error.status_code, _REASONS[error.status_code]),
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                b"\r\n",
            ]
            self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
