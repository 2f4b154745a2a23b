"""The InferenceBackend over Triton's gRPC API, on one shared asyncio channel.

Every call goes through ``ModelStreamInfer``: decoupled models answer only on the
bidirectional stream. tritonclient's asyncio helper refuses the ``triton_``-prefixed request
parameter that makes Triton flag the last response, so the generated stub is used directly.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.embedding import build_embedding_request, parse_embedding_response
from api.backend.ensemble import build_generation_request, is_final, parse_generation_response
from api.backend.errors import error_for_message, map_grpc_errors
from api.backend.stop import Stopper
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)
from api.errors import BackendError
from api.settings import TritonSettings

logger = logging.getLogger(__name__)


class TritonGrpcBackend:
    """Talks to one Triton server; owns the channel for the application's lifetime."""

    def __init__(self, settings: TritonSettings, request_timeout_s: float) -> None:
        self._settings = settings
        self._request_timeout_s = request_timeout_s
        backoff_ms = int(settings.max_reconnect_backoff_s * 1000)
        options = [
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", min(backoff_ms, 1000)),
            ("grpc.min_reconnect_backoff_ms", min(backoff_ms, 1000)),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
        ]
        self._channel = grpc.aio.insecure_channel(settings.url, options=options)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self._stopper = Stopper(settings.stop_model, self._send_stop)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        """Stream the generation; if it is left before its final response, stop it in Triton."""
        message = build_generation_request(request)
        # Triton's id must be ours alone: a stop request ends whatever runs under it, and the
        # request id may come from the client (X-Request-ID).
        message.id = f"{request.request_id}-{secrets.token_hex(4)}"
        finished = False
        try:
            async for response in self._stream(message):
                chunk = parse_generation_response(response)
                finished = chunk.final
                yield chunk
        finally:
            if not finished:
                self._stopper.stop(message.id)

    async def _send_stop(self, message: service_pb2.ModelInferRequest) -> None:
        async for _ in self._stream(message, timeout_s=self._settings.ready_timeout_s):
            pass

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str
    ) -> EmbeddingResult:
        message = build_embedding_request(triton_model, texts, request_id)
        async for response in self._stream(message):
            if response.outputs:
                vectors, counts = parse_embedding_response(response, len(texts))
                return EmbeddingResult(vectors=vectors, token_counts=counts)
        raise BackendError("The embedding model returned no output.")

    async def _stream(
        self, message: service_pb2.ModelInferRequest, timeout_s: float | None = None
    ) -> AsyncGenerator[service_pb2.ModelInferResponse, None]:
        """Send one request on its own stream; yield responses until the final one.

        The request iterator stays open until the end: finishing it early half-closes the
        stream. Leaving this generator early (client gone, error) cancels the RPC, which
        cancels the request inside Triton.
        """
        finished = asyncio.Event()

        async def requests() -> AsyncIterator[service_pb2.ModelInferRequest]:
            yield message
            await finished.wait()

        call = self._stub.ModelStreamInfer(requests(), timeout=timeout_s or self._request_timeout_s)
        try:
            with map_grpc_errors():
                async for reply in call:
                    if reply.error_message:
                        raise error_for_message(reply.error_message)
                    yield reply.infer_response
                    if is_final(reply.infer_response):
                        return
            raise BackendError("The inference stream ended before its final response.")
        finally:
            finished.set()
            call.cancel()

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
        await self._channel.close()
