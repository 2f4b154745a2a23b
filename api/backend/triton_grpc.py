"""The InferenceBackend over Triton's gRPC API, on one shared asyncio channel.

Every call goes through ``ModelStreamInfer``: decoupled models answer only on the
bidirectional stream. tritonclient's asyncio helper refuses the ``triton_``-prefixed request
parameter that makes Triton flag the last response, so the generated stub is used directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence

import grpc
from grpc.aio._typing import EOFType
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.embedding import build_embedding_request, parse_embedding_response
from api.backend.ensemble import (
    HeldBackTail,
    build_generation_request,
    is_final,
    parse_generation_response,
)
from api.backend.errors import error_for_message, map_grpc_errors
from api.backend.stop import Stopper
from api.backend.stream_pool import PooledStream, StreamPool
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendError
from api.ids import unique_hex
from api.settings import TritonSettings

logger = logging.getLogger(__name__)


class TritonGrpcBackend:
    """Talks to one Triton server; owns the channel for the application's lifetime.

    ``address`` is the server's ``host:port`` (default: ``settings.url``); a replica set
    (api/backend/replica_set.py) makes one per replica, so each has its own streams.
    """

    def __init__(self, settings: TritonSettings, address: str | None = None) -> None:
        self._settings = settings
        self.address = address or settings.url
        backoff_ms = int(settings.max_reconnect_backoff_s * 1000)
        options = [
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", min(backoff_ms, 1000)),
            ("grpc.min_reconnect_backoff_ms", min(backoff_ms, 1000)),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
        ]
        self._channel = grpc.aio.insecure_channel(self.address, options=options)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self._pool = StreamPool(
            lambda: self._stub.ModelStreamInfer(),
            max_idle=settings.idle_streams,
            idle_ttl_s=settings.idle_stream_ttl_s,
        )
        self._stopper = Stopper(settings.stop_model, self._send_stop)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        """Stream the generation; if it is left before its final response, stop it in Triton."""
        message = build_generation_request(request)
        # Triton's id must be ours alone: a stop request ends whatever runs under it, and the
        # request id may come from the client (X-Request-ID).
        message.id = f"{request.request_id}-{unique_hex(32)}"
        finished = False
        tail = HeldBackTail()
        responses = self._stream(message)
        try:
            async for response in responses:
                chunk = tail.settle(parse_generation_response(response))
                finished = chunk.final
                yield chunk
        finally:
            # At once, not when the garbage collector gets to it: this cancels the stream.
            await responses.aclose()
            if not finished:
                self._stopper.stop(message.id)

    async def _send_stop(self, message: service_pb2.ModelInferRequest) -> None:
        async with asyncio.timeout(self._settings.ready_timeout_s):
            async for _ in self._stream(message):
                pass

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        message = build_embedding_request(triton_model, texts, request_id, truncate)
        result: EmbeddingResult | None = None
        # Read on to the final response, so the stream goes back to the pool clean.
        async for response in self._stream(message):
            if response.outputs and result is None:
                vectors, counts = parse_embedding_response(response, len(texts))
                result = EmbeddingResult(vectors=vectors, token_counts=counts)
        if result is None:
            raise BackendError("The embedding model returned no output.")
        return result

    async def _stream(
        self, message: service_pb2.ModelInferRequest
    ) -> AsyncGenerator[service_pb2.ModelInferResponse, None]:
        """Send one request on a pooled stream; yield responses until the final one.

        Leaving this generator early (client gone, deadline, error) cancels the stream, which
        cancels the request inside Triton; the deadline itself is DeadlineBackend's.
        """
        stream = self._pool.take()
        ended = False
        try:
            with map_grpc_errors():
                reply = await self._first_reply(stream, message)
                while True:
                    if reply is grpc.aio.EOF:
                        raise BackendError("The inference stream ended before its final response.")
                    if reply.error_message:
                        raise error_for_message(reply.error_message)
                    if reply.infer_response.id != message.id:
                        raise BackendError("The inference stream mixed up two requests.")
                    ended = is_final(reply.infer_response)
                    yield reply.infer_response
                    if ended:
                        return
                    reply = await stream.call.read()
        finally:
            if ended:
                self._pool.give_back(stream)
            else:
                self._pool.discard(stream)

    async def _first_reply(
        self, stream: PooledStream, message: service_pb2.ModelInferRequest
    ) -> service_pb2.ModelStreamInferResponse | EOFType:
        """Write the request and read its first reply. A reused stream that died while idle
        (the connection dropped, Triton restarted) fails before any reply: the request never
        ran, so it is sent once more on a new stream."""
        try:
            await stream.call.write(message)
            return await stream.call.read()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            if not stream.reused:
                raise
        self._pool.discard(stream)
        stream.call = self._pool.open()
        stream.reused = False
        await stream.call.write(message)
        return await stream.call.read()

    async def readiness(self, models: Sequence[str]) -> Readiness:
        timeout = self._settings.ready_timeout_s
        try:
            server = await self._stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=timeout)
            states = await asyncio.gather(
                *(
                    self._stub.ModelReady(service_pb2.ModelReadyRequest(name=name), timeout=timeout)
                    for name in models
                )
            )
        except grpc.aio.AioRpcError as exc:
            return Readiness(server_ready=False, detail=exc.details() or str(exc.code()))
        return Readiness(
            server_ready=server.ready,
            models={name: state.ready for name, state in zip(models, states, strict=True)},
        )

    async def close(self) -> None:
        await self._stopper.wait(self._settings.ready_timeout_s)
        self._pool.close()
        await self._channel.close()
