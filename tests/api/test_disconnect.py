"""The disconnect middleware, driven with raw ASGI messages (a client that hangs up)."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from api.http.disconnect import CancelOnDisconnectMiddleware

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}


class Client:
    """Sends a two-part body, then hangs up when told to."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        for body, more in ((b'{"a":', True), (b"1}", False)):
            self.messages.put_nowait({"type": "http.request", "body": body, "more_body": more})
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.messages.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def hang_up(self) -> None:
        self.messages.put_nowait({"type": "http.disconnect"})


class SlowApp:
    """Reads the whole body, then works for ``work_s`` before answering."""

    def __init__(self, work_s: float) -> None:
        self.work_s = work_s
        self.body = b""
        self.cancelled = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            await asyncio.sleep(self.work_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


async def test_work_is_cancelled_when_the_client_leaves_before_the_response() -> None:
    app, client = SlowApp(work_s=5), Client()
    task = asyncio.create_task(
        CancelOnDisconnectMiddleware(app)(SCOPE, client.receive, client.send)
    )
    await asyncio.sleep(0.01)
    client.hang_up()
    await asyncio.wait_for(task, timeout=1)
    assert app.body == b'{"a":1}'  # the watcher never took a body message away
    assert app.cancelled
    assert client.sent[0]["status"] == 499  # for the access log and metrics; nobody reads it


async def test_a_finished_request_is_untouched() -> None:
    app, client = SlowApp(work_s=0), Client()
    await CancelOnDisconnectMiddleware(app)(SCOPE, client.receive, client.send)
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert not app.cancelled


class StreamingApp(SlowApp):
    """Starts its response, then sends the rest after ``work_s``; tidies up after the end."""

    def __init__(self, work_s: float, tidy_s: float = 0.0) -> None:
        super().__init__(work_s)
        self.tidy_s = tidy_s
        self.tidied = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await asyncio.sleep(self.work_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.body", "body": b"tail", "more_body": False})
        await asyncio.sleep(self.tidy_s)
        self.tidied = True


async def test_a_started_response_is_cancelled_when_the_client_leaves() -> None:
    app, client = StreamingApp(work_s=5), Client()
    task = asyncio.create_task(
        CancelOnDisconnectMiddleware(app)(SCOPE, client.receive, client.send)
    )
    await asyncio.sleep(0.01)
    client.hang_up()
    await asyncio.wait_for(task, timeout=1)
    assert app.cancelled
    # The 200 already went out: no 499 after it, and no body.
    assert [m["type"] for m in client.sent] == ["http.response.start"]


async def test_a_sent_response_finishes_tidying_up() -> None:
    # Once the whole body is out the server reports a disconnect; the handler's clean-up
    # (closing streams, settling usage) must still run to the end.
    app, client = StreamingApp(work_s=0, tidy_s=0.05), Client()
    task = asyncio.create_task(
        CancelOnDisconnectMiddleware(app)(SCOPE, client.receive, client.send)
    )
    await asyncio.sleep(0.01)
    client.hang_up()
    await asyncio.wait_for(task, timeout=1)
    assert app.tidied and not app.cancelled
    assert client.sent[-1]["body"] == b"tail"
