"""The API's gRPC streams are reused between requests, against the real Triton server.

A stream goes back to the pool only after its request's final response, so what one request
left unread can never reach the next one on the same stream.
"""

from __future__ import annotations

import asyncio

import pytest

from api.backend.triton_grpc import TritonGrpcBackend
from api.backend.types import GenerationRequest, SamplingParams
from api.settings import TritonSettings
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def request(request_id: str, max_tokens: int = 12) -> GenerationRequest:
    return GenerationRequest(
        request_id=request_id,
        triton_model="ensemble",
        params=SamplingParams(max_tokens=max_tokens, min_tokens=max_tokens, temperature=0.0),
        prompt="The capital of France is",
    )


async def generate(backend: TritonGrpcBackend, generation: GenerationRequest) -> tuple[str, int]:
    text, tokens = "", 0
    async for chunk in backend.generate(generation):
        text += chunk.text
        tokens += chunk.completion_tokens
    return text, tokens


@pytest.fixture
async def backend(stack: Stack) -> TritonGrpcBackend:
    return TritonGrpcBackend(TritonSettings(url=stack.triton_grpc))


async def test_requests_in_a_row_share_one_stream(backend: TritonGrpcBackend) -> None:
    try:
        first = await generate(backend, request("reuse-1"))
        stream = backend._pool._idle[-1].call
        second = await generate(backend, request("reuse-2"))
        assert backend._pool.idle == 1 and backend._pool._idle[-1].call is stream
        assert first == second and first[1] == 12 and first[0]
        vectors = await backend.embed("embedding", ["a pooled stream"], "reuse-3")
        assert vectors.vectors.shape == (1, 384)
        assert backend._pool._idle[-1].call is stream
    finally:
        await backend.close()


async def test_a_stream_left_mid_reply_is_not_reused(stack: Stack) -> None:
    # No stop request: it would take a pooled stream of its own and blur what is checked here.
    backend = TritonGrpcBackend(TritonSettings(url=stack.triton_grpc, stop_model=None))
    try:
        expected = await generate(backend, request("whole", max_tokens=40))
        stream = backend.generate(request("left", max_tokens=40))
        await anext(stream)
        await stream.aclose()  # the caller leaves with most of the reply still coming
        assert backend._pool.idle == 0
        # The next request gets a clean stream: exactly its own reply, nothing left over.
        assert await generate(backend, request("after", max_tokens=40)) == expected
    finally:
        await backend.close()


async def test_concurrent_requests_use_their_own_streams(backend: TritonGrpcBackend) -> None:
    try:
        alone = await generate(backend, request("alone"))
        together = await asyncio.gather(*(generate(backend, request(f"c{i}")) for i in range(4)))
        assert together == [alone] * 4
        assert backend._pool.idle == 4
    finally:
        await backend.close()
