"""A scripted InferenceBackend for fast route tests (the e2e suite uses real Triton)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

import numpy as np

from api.backend.types import (
    EmbeddingInputs,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    Readiness,
    TokenLogprob,
)
from api.errors import APIError


@dataclass
class FakeBackend:
    """Replies with ``reply`` one word per chunk, cut at max_tokens like a real engine."""

    reply: str = "Hello there, how can I help?"
    prompt_tokens: int = 7
    fail_before_first: APIError | None = None
    fail_after_chunks: int | None = None
    ready: bool = True
    requests: list[GenerationRequest] = field(default_factory=list)
    embedded: list[list[str]] = field(default_factory=list)
    # The truncate flag of each embed call, in order.
    truncations: list[bool] = field(default_factory=list)
    closed_streams: int = 0
    # Seconds before each text chunk (and each embedding): a slow engine for timeout tests.
    chunk_delay_s: float = 0.0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        try:
            if self.fail_before_first is not None:
                raise self.fail_before_first
            yield GenerationChunk(prompt_tokens=self.prompt_tokens)
            words = self.reply.split(" ")
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
            for index, piece in enumerate(pieces[: request.params.max_tokens]):
                if self.fail_after_chunks is not None and index >= self.fail_after_chunks:
                    raise APIError("engine crashed")
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
                yield GenerationChunk(
                    text=piece, completion_tokens=1, logprobs=_logprobs(piece, request)
                )
            yield GenerationChunk(final=True)
        finally:
            self.closed_streams += 1

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        self.embedded.append(list(texts))
        self.truncations.append(truncate)
        if self.chunk_delay_s:
            await asyncio.sleep(self.chunk_delay_s)
        keys = [t if isinstance(t, str) else ",".join(map(str, t)) for t in texts]
        counts = [len(t.split()) if isinstance(t, str) else len(t) for t in texts]
        return EmbeddingResult(vectors=np.stack([_vector(k) for k in keys]), token_counts=counts)

    async def readiness(self, models: Sequence[str]) -> Readiness:
        return Readiness(server_ready=self.ready, models=dict.fromkeys(models, self.ready))

    async def close(self) -> None:
        return None


def _vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _logprobs(piece: str, request: GenerationRequest) -> list[TokenLogprob]:
    """One token per piece, with two alternatives, when log probabilities were asked for."""
    if not request.params.return_log_probs:
        return []
    top = ((piece.encode(), -0.5), (b"?", -2.0))
    return [TokenLogprob(token=piece.encode(), logprob=-0.5, top=top)]
