"""Reading a request body in middleware and handing it on unchanged to the app."""

from __future__ import annotations

from starlette.types import Message, Receive


async def peek_body(receive: Receive, max_bytes: int) -> tuple[bytes | None, Receive]:
    """The body (None if over ``max_bytes``) and a ``receive`` that replays it first."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > max_bytes or not message.get("more_body", False):
            break
    over = size > max_bytes or messages[-1]["type"] != "http.request"
    body = None if over else b"".join(m.get("body", b"") for m in messages)

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay
