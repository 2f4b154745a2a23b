"""The one interface routes use to run models."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
)


class InferenceBackend(Protocol):
    """Runs generations and embeddings; the gRPC implementation talks to Triton.

    ``generate`` yields chunks until one has ``final`` set; closing the iterator early cancels
    the backend request.
    """

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]: ...

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult: ...

    async def readiness(self, models: Sequence[str]) -> Readiness: ...

    async def close(self) -> None: ...
