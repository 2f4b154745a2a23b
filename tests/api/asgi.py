"""Driving the app as raw ASGI, where each body message is one write to the client's socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.testclient import TestClient
from starlette.types import Message

from tests.api.keys import AUTH


def post(
    client: TestClient,
    path: str,
    body: bytes,
    hang_up_after: int | None = None,
    on_send: Callable[[list[Message]], None] | None = None,
) -> list[Message]:
    """POST ``body`` to ``path`` on the running app; the messages it sent back.

    With ``hang_up_after``, the client disconnects once that many body messages arrived;
    ``on_send`` sees the messages received so far after each one.
    """
    headers = [(b"content-type", b"application/json")]
    headers += [(name.lower().encode(), value.encode()) for name, value in AUTH.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[Message] = []

    async def drive() -> None:
        requests = [{"type": "http.request", "body": body, "more_body": False}]
        gone = asyncio.Event()

        async def receive() -> Message:
            if requests:
                return requests.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if gone.is_set():
                return  # like a server whose client left: the write goes nowhere
            sent.append(message)
            if on_send is not None:
                on_send(sent)
            bodies = sum(1 for m in sent if m["type"] == "http.response.body")
            if hang_up_after is not None and bodies >= hang_up_after:
                gone.set()

        await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(drive)
    return sent
