"""Retries: only before the first chunk, only for "backend unavailable", never duplicating."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import pytest

from api.backend.retry import RetryBackend
from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    SamplingParams,
)
from api.errors import BackendUnavailableError, CircuitOpenError, InvalidRequestError
from tests.api.fakes import FakeBackend

REQUEST = GenerationRequest(
    request_id="r", triton_model="ensemble", params=SamplingParams(max_tokens=3), prompt="x"
)


@dataclass
class Flaky(FakeBackend):
    """Fails the first ``failures`` calls with ``error``, then behaves."""

    failures: int = 0
    error: Exception = field(default_factory=lambda: BackendUnavailableError("down"))
    embed_calls: int = 0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            raise self.error
        async for chunk in super().generate(request):
            yield chunk

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        self.embed_calls += 1
        if self.embed_calls <= self.failures:
            raise self.error
        return await super().embed(triton_model, texts, request_id, truncate=truncate)


def retrying(inner: FakeBackend, attempts: int = 2) -> RetryBackend:
    return RetryBackend(inner, attempts=attempts, backoff_s=0.001)


async def text(backend: RetryBackend) -> str:
    return "".join([chunk.text async for chunk in backend.generate(REQUEST)])


async def test_unavailable_before_the_first_chunk_is_retried() -> None:
    flaky = Flaky(failures=2)
    assert await text(retrying(flaky)) == "Hello there, how"
    assert len(flaky.requests) == 4  # two failures, then the attempt that served


async def test_gives_up_after_the_attempts() -> None:
    flaky = Flaky(failures=5)
    with pytest.raises(BackendUnavailableError):
        await text(retrying(flaky))
    assert len(flaky.requests) == 3


@pytest.mark.parametrize("error", [InvalidRequestError("bad"), CircuitOpenError("open")])
async def test_final_errors_are_not_retried(error: Exception) -> None:
    flaky = Flaky(failures=1, error=error)
    with pytest.raises(type(error)):
        await text(retrying(flaky))
    assert len(flaky.requests) == 1


async def test_a_failure_after_the_first_chunk_is_never_retried() -> None:
    inner = FakeBackend(fail_after_chunks=1)
    seen: list[str] = []
    with pytest.raises(Exception, match="engine crashed"):
        async for chunk in retrying(inner).generate(REQUEST):
            seen.append(chunk.text)
    assert seen == ["", "Hello"]  # nothing repeated
    assert len(inner.requests) == 1


async def test_embeddings_are_retried() -> None:
    flaky = Flaky(failures=1)
    result = await retrying(flaky).embed("embedding", ["a"], "r")
    assert result.vectors.shape == (1, 384)
    assert flaky.embed_calls == 2
