"""``WS /v1/chat/completions/ws``: chat completions streamed over a WebSocket.

The client sends a chat completion request as one JSON text message; the server answers with
the same ``chat.completion.chunk`` objects the SSE stream carries, one per text message, then
the text ``[DONE]``. Errors are OpenAI error objects followed by ``[DONE]``. One connection can
carry any number of requests, one after the other; closing it mid-stream cancels the request.
Every message is rate-limited and leaves a usage record, like an HTTP request.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from api.chat_replies import chat_chunk_events
from api.chat_run import begin_chat
from api.errors import APIError, BackendError
from api.ids import unique_hex
from api.limits.messages import metered_message
from api.requests import parse_payload
from api.schemas.chat import ChatCompletionRequest
from api.services import Services, services_of

logger = logging.getLogger(__name__)

DONE = "[DONE]"


async def chat_completions_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    services = services_of(websocket)
    try:
        while True:
            message = await websocket.receive_text()
            await _serve_one(websocket, services, message)
    except WebSocketDisconnect:
        return


async def _serve_one(websocket: WebSocket, services: Services, message: str) -> None:
    try:
        if len(message.encode()) > services.settings.max_request_bytes:
            raise APIError("The request exceeds the size limit.", code="request_too_large")
        request_id = unique_hex()
        # Each message is admitted, limited, settled and recorded like an HTTP request.
        async with metered_message(websocket.scope, message, request_id) as usage:
            body = parse_payload(message, ChatCompletionRequest)
            run = await begin_chat(services, body, request_id)
            usage.track(run.states)
            events = chat_chunk_events(
                run.streams,
                run.generations,
                run.meta,
                body.include_usage(),
                run.states,
                run.chunks,
            )
            try:
                async for payload in events:
                    await websocket.send_text(payload.decode())
            finally:
                await events.aclose()
    except APIError as exc:
        await websocket.send_text(exc.to_json().decode())
    except WebSocketDisconnect:
        raise
    except Exception:
        logger.exception("websocket request failed")
        await websocket.send_text(BackendError("The stream failed.").to_json().decode())
    await websocket.send_text(DONE)
