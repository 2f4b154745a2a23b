"""``WS /v1/chat/completions/ws``: chat completions streamed over a WebSocket.

The client sends a chat completion request as one JSON text message. A request streams unless
it says ``"stream": false``: the server answers with the same ``chat.completion.chunk``
objects the SSE stream carries, one per text message; with ``"stream": false`` the answer is
one ``chat.completion`` object. Every answer ends with the text ``[DONE]``. A request's errors
are OpenAI error objects followed by ``[DONE]``, and the connection stays open. One connection
can carry any number of requests, one after the other; closing it mid-stream cancels the
request. Every message is rate-limited and leaves a usage record, like an HTTP request.

A fault of the connection itself is answered with an error object and then closed with its
close code and reason: a binary frame 1003 (unsupported data), a message over the request size
limit 1009 (message too big), a key that is missing or revoked 1008 (policy violation).
"""

from __future__ import annotations

import contextlib
import logging

import orjson
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.chat.replies import chat_chunk_events, collect_chat_completion
from api.chat.run import ChatRun, begin_chat
from api.errors import (
    APIError,
    AuthenticationError,
    BackendError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from api.http.request_body import parse_payload
from api.ids import unique_hex
from api.limits.messages import metered_message
from api.schemas.chat import ChatCompletionRequest
from api.services import Services, services_of

logger = logging.getLogger(__name__)

DONE = "[DONE]"
UNSUPPORTED_DATA, POLICY_VIOLATION, MESSAGE_TOO_BIG = 1003, 1008, 1009


class ConnectionFault(Exception):
    """A fault that ends the connection: ``error`` is sent, then the close code and reason."""

    def __init__(self, error: APIError, code: int) -> None:
        super().__init__(error.message)
        self.error, self.code = error, code


async def chat_completions_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    services = services_of(websocket)
    # The client may leave at any point, even while a fault is being answered.
    with contextlib.suppress(WebSocketDisconnect):
        try:
            while (message := await websocket.receive())["type"] != "websocket.disconnect":
                await _serve_one(websocket, services, message)
        except ConnectionFault as fault:
            await websocket.send_text(fault.error.to_json().decode())
            # A close reason is at most 123 bytes (RFC 6455, 5.5).
            reason = fault.error.message.encode()[:123].decode(errors="ignore")
            await websocket.close(fault.code, reason)


async def _serve_one(websocket: WebSocket, services: Services, message: Message) -> None:
    try:
        text = _text_of(message, services.settings.max_request_bytes)
        request_id = unique_hex()
        # Each message is admitted, limited, settled and recorded like an HTTP request.
        async with metered_message(websocket.scope, text, request_id) as usage:
            body = parse_payload(_streamed_by_default(text), ChatCompletionRequest)
            run = await begin_chat(services, body, request_id)
            usage.track(run.states)
            await _answer(websocket, run, body)
    except AuthenticationError as exc:
        raise ConnectionFault(exc, POLICY_VIOLATION) from None
    except APIError as exc:
        await websocket.send_text(exc.to_json().decode())
    except (WebSocketDisconnect, ConnectionFault):
        raise
    except Exception:
        logger.exception("websocket request failed")
        await websocket.send_text(BackendError("The stream failed.").to_json().decode())
    await websocket.send_text(DONE)


async def _answer(websocket: WebSocket, run: ChatRun, body: ChatCompletionRequest) -> None:
    if not body.stream:
        completion = await collect_chat_completion(
            run.streams, run.generations, run.meta, run.states
        )
        await websocket.send_text(completion.model_dump_json())
        return
    events = chat_chunk_events(
        run.streams, run.generations, run.meta, body.include_usage(), run.states, run.chunks
    )
    try:
        async for payload in events:
            await websocket.send_text(payload.decode())
    finally:
        await events.aclose()


def _text_of(message: Message, max_bytes: int) -> str:
    """The request a message carries: JSON text, within the size limit."""
    text = message.get("text")
    if not isinstance(text, str):
        error: APIError = InvalidRequestError(
            "Binary frames are not supported: send each request as JSON text.",
            code="unsupported_data",
        )
        raise ConnectionFault(error, UNSUPPORTED_DATA)
    if len(text.encode()) > max_bytes:
        error = PayloadTooLargeError(f"The message exceeds {max_bytes} bytes.")
        raise ConnectionFault(error, MESSAGE_TOO_BIG)
    return text


def _streamed_by_default(text: str) -> str | bytes:
    """The request with ``"stream": true`` unless it says otherwise (unparsable text is left
    to ``parse_payload``, which explains what is wrong with it)."""
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if not isinstance(payload, dict) or "stream" in payload:
        return text
    return orjson.dumps({**payload, "stream": True})
