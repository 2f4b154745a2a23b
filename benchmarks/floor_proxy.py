"""The thinnest proxy this architecture allows: the floor under the API's time to first token.

A measuring instrument, not a product. uvicorn, configured as the API runs it (and gRPC's
client with the API's ``GRPC_EXPERIMENTS``, which ``benchmarks.stack`` sets), serves one
route that turns an OpenAI chat request into the ensemble's gRPC request on a ``grpc.aio``
channel (with the API's own request builder and response parser, so Triton gets the same
tensors) and writes each response out as an SSE chunk. Nothing else: no authentication,
limits, usage records, validation, logging or disconnect handling, no error handling beyond
what keeps it running.

What it adds to Triton's time at concurrency 1 is what any Python gateway made of an HTTP
server and gRPC's asyncio client pays on this machine before it does any work of its own (its
thread hand-offs and socket writes). The API's figure minus this one is what the API's own
work costs: auth, limits, usage, validation, the backend's guards.

``python -m benchmarks.floor_proxy --port 9100 --triton 127.0.0.1:8001``
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import grpc
import orjson
import uvicorn
from starlette.types import Receive, Scope, Send
from tritonclient.grpc import service_pb2_grpc

from api.backend.ensemble import build_generation_request, parse_generation_response
from api.backend.types import GenerationRequest, SamplingParams
from api.http.sse import DONE, frame

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8")]


def generation_request(payload: dict[str, Any], triton_model: str) -> GenerationRequest:
    """The ensemble request the API would build for the same plain chat body."""
    messages = [
        {"role": message["role"], "content": message["content"]} for message in payload["messages"]
    ]
    temperature = payload.get("temperature")
    return GenerationRequest(
        request_id=os.urandom(8).hex(),
        triton_model=triton_model,
        params=SamplingParams(
            max_tokens=payload.get("max_completion_tokens") or payload.get("max_tokens") or 16,
            temperature=1.0 if temperature is None else float(temperature),
            min_tokens=payload.get("min_tokens") or 0,
        ),
        messages_json=orjson.dumps(messages).decode(),
    )


def chunk(reply_id: str, model: str, text: str, first: bool) -> bytes:
    delta = {"role": "assistant", "content": text} if first else {"content": text}
    payload = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return frame(orjson.dumps(payload))


class FloorProxy:
    """The ASGI app: ``/health/ready`` and a streaming ``/v1/chat/completions``."""

    def __init__(self, triton_url: str, triton_model: str = "ensemble") -> None:
        self._url = triton_url
        self._model = triton_model
        self._stub: service_pb2_grpc.GRPCInferenceServiceStub | None = None
        # Bidirectional streams are reused, as the API's StreamPool does.
        self._idle: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"] == "/v1/chat/completions":
            await self._chat(receive, send)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The channel belongs to the server's event loop: made here, not in __init__.
                channel = grpc.aio.insecure_channel(self._url)
                self._stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _chat(self, receive: Receive, send: Send) -> None:
        assert self._stub is not None
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        payload = orjson.loads(body)
        request = generation_request(payload, self._model)
        model = str(payload.get("model", ""))
        call = self._idle.pop() if self._idle else self._stub.ModelStreamInfer()
        await call.write(build_generation_request(request))
        first = True
        while True:
            reply = await call.read()
            if reply.error_message:
                raise RuntimeError(reply.error_message)
            result = parse_generation_response(reply.infer_response)
            if first:
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            if result.text or first:
                data = chunk(request.request_id, model, result.text, first)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                first = False
            if result.final:
                break
        self._idle.append(call)
        await send({"type": "http.response.body", "body": DONE, "more_body": False})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--triton", required=True, help="Triton's gRPC host:port")
    args = parser.parse_args(argv)
    # The API's uvicorn settings (api.server.serve): default loop and HTTP parser, no access log.
    uvicorn.run(
        FloorProxy(args.triton),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
