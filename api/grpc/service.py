"""``llm.v1.LLMService``: the REST routes' work behind gRPC methods.

Each RPC turns its request into REST's JSON body, validates it with REST's schema and runs the
same pipeline (``api.chat.run``, ``api.completions.run``, the embedding route's steps); only
the replies' encoding differs. Streams end with one message that carries the usage and the
last choice's finish reason.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from api.chat.replies import chat_chunk_events, collect_chat_completion
from api.chat.run import begin_chat
from api.completions.replies import collect_completion, completion_chunk_events
from api.completions.run import begin_completion
from api.grpc import llm_service_pb2 as pb
from api.grpc import llm_service_pb2_grpc as pb_grpc
from api.grpc.calls import Call, Calls
from api.grpc.payloads import (
    chat_body,
    chat_chunk,
    completion_body,
    completion_chunk,
    embedding_body,
    to_message,
)
from api.http.request_body import validate_payload
from api.routes.embeddings import check_dimensions, input_texts, render
from api.schemas.chat import ChatCompletionRequest
from api.schemas.completions import CompletionRequest
from api.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from api.settings import ModelKind

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
ChunkT = TypeVar("ChunkT", pb.ChatCompletionChunk, pb.Completion)
SERVICE = pb.DESCRIPTOR.services_by_name["LLMService"].full_name


def method_path(name: str) -> str:
    """The RPC's path, as its usage records name it: ``/llm.v1.LLMService/ChatComplete``."""
    return f"/{SERVICE}/{name}"


class LLMService(pb_grpc.LLMServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls
        self._services = calls.services

    async def ChatComplete(
        self, request: pb.ChatCompletionRequest, context: Context
    ) -> pb.ChatCompletion:
        async def work(call: Call) -> pb.ChatCompletion:
            body = validate_payload(call.body, ChatCompletionRequest)
            run = await begin_chat(self._services, body, call.request_id)
            call.usage.track(run.states)
            reply = await collect_chat_completion(
                run.streams, run.generations, run.meta, run.states
            )
            return to_message(reply.model_dump(), pb.ChatCompletion)

        path = method_path("ChatComplete")
        return await self._calls.run(context, path, lambda: chat_body(request, False), work)

    async def StreamChatComplete(self, request: pb.ChatCompletionRequest, context: Context) -> None:
        async def work(call: Call) -> None:
            body = validate_payload(call.body, ChatCompletionRequest)
            run = await begin_chat(self._services, body, call.request_id)
            call.usage.track(run.states)
            events = chat_chunk_events(
                run.streams, run.generations, run.meta, True, run.states, run.chunks
            )
            await _write(context, call, events, chat_chunk)

        path = method_path("StreamChatComplete")
        await self._calls.run(context, path, lambda: chat_body(request, True), work)

    async def Complete(self, request: pb.CompletionRequest, context: Context) -> pb.Completion:
        async def work(call: Call) -> pb.Completion:
            body = validate_payload(call.body, CompletionRequest)
            run = await begin_completion(self._services, body, call.request_id)
            call.usage.track(run.states, prompts=run.prompts)
            reply = await collect_completion(
                run.streams, run.generations, run.meta, body.echo, run.states, run.prompts
            )
            return to_message(reply.model_dump(), pb.Completion)

        path = method_path("Complete")
        return await self._calls.run(context, path, lambda: completion_body(request, False), work)

    async def StreamComplete(self, request: pb.CompletionRequest, context: Context) -> None:
        async def work(call: Call) -> None:
            body = validate_payload(call.body, CompletionRequest)
            run = await begin_completion(self._services, body, call.request_id)
            call.usage.track(run.states, prompts=run.prompts)
            events = completion_chunk_events(
                run.streams, run.generations, run.meta, body.echo, True, run.states, run.prompts
            )
            await _write(context, call, events, completion_chunk)

        path = method_path("StreamComplete")
        await self._calls.run(context, path, lambda: completion_body(request, True), work)

    async def GetEmbeddings(
        self, request: pb.EmbeddingRequest, context: Context
    ) -> pb.EmbeddingResponse:
        async def work(call: Call) -> pb.EmbeddingResponse:
            services = self._services
            body = validate_payload(call.body, EmbeddingRequest)
            model = services.registry.resolve(body.model, ModelKind.EMBEDDING)
            texts = input_texts(body, services.settings.max_embedding_inputs)
            check_dimensions(body, model)
            result = await services.embeddings.embed(
                model, texts, call.request_id, truncate=body.truncate
            )
            call.usage.prompt_tokens = sum(result.token_counts)
            return _embeddings(render(body, result))

        path = method_path("GetEmbeddings")
        return await self._calls.run(context, path, lambda: embedding_body(request), work)


async def _write(
    context: Context,
    call: Call,
    events: AsyncGenerator[bytes, None],
    message: Callable[[bytes], ChunkT],
) -> None:
    """Send the stream's chunks; the usage-only last chunk is folded into the one before it,
    so the stream ends with a message that carries the usage and a finish reason."""
    pending: ChunkT | None = None
    try:
        async for payload in events:
            chunk = message(payload)
            if pending is not None and not chunk.choices and chunk.HasField("usage"):
                pending.usage.CopyFrom(chunk.usage)
                continue
            if pending is not None:
                await _send(context, call, pending)
            pending = chunk
        if pending is not None:
            await _send(context, call, pending)
    finally:
        # At once: closing the chunks closes the backend streams, which cancels in Triton.
        await events.aclose()


async def _send(context: Context, call: Call, message: Message) -> None:
    call.usage.delivering()  # journaled before the tokens go out (api/usage/inflight.py)
    await context.write(message)


def _embeddings(reply: EmbeddingResponse) -> pb.EmbeddingResponse:
    """REST's embedding list; a base64 vector goes in ``embedding_base64``."""
    data = [
        pb.Embedding(index=item.index, embedding_base64=item.embedding)
        if isinstance(item.embedding, str)
        else pb.Embedding(index=item.index, embedding=item.embedding)
        for item in reply.data
    ]
    usage = pb.EmbeddingUsage(
        prompt_tokens=reply.usage.prompt_tokens, total_tokens=reply.usage.total_tokens
    )
    return pb.EmbeddingResponse(object=reply.object, data=data, model=reply.model, usage=usage)
