"""Embeddings with a per-input cache: a partly cached batch computes only its misses."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from aiocache import BaseCache, Cache, SimpleMemoryCache
from aiocache.serializers import BaseSerializer

from api.backend.protocol import InferenceBackend
from api.backend.types import EmbeddingInputs
from api.errors import InvalidRequestError
from api.settings import ServedModel

CachedEmbedding = tuple[bytes, int]


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: npt.NDArray[np.float32]
    token_counts: list[int]
    cache_hits: int


class EmbeddingSerializer(BaseSerializer):  # type: ignore[misc]
    """(vector bytes, token count) as ``<uint32 count><float32 vector>``: compact, no pickle."""

    DEFAULT_ENCODING = None
    _COUNT = struct.Struct("<I")

    def dumps(self, value: CachedEmbedding) -> bytes:
        vector, count = value
        return self._COUNT.pack(count) + vector

    def loads(self, value: bytes | None) -> CachedEmbedding | None:
        if value is None:
            return None
        (count,) = self._COUNT.unpack_from(value)
        return value[self._COUNT.size :], count


def build_embedding_cache(redis_url: str | None, namespace: str = "emb") -> BaseCache:
    """In-process by default; shared across replicas in Redis when a URL is configured."""
    if redis_url is None:
        return SimpleMemoryCache()
    cache: BaseCache = Cache.from_url(redis_url)
    cache.serializer = EmbeddingSerializer()
    cache.namespace = namespace
    return cache


def cache_key(model: ServedModel, item: str | Sequence[int], truncate: bool = False) -> str:
    """Hash of everything that decides the vector: the Triton model and the input.

    A text embedded with ``truncate`` may have been cut, so it never answers a request that
    must be refused for its length. Token ids are cut here (``bounded_inputs``), before the key.
    """
    if isinstance(item, str):
        payload = f"cut:{item}" if truncate else item
    else:
        payload = "ids:" + ",".join(map(str, item))
    digest = hashlib.sha256(f"{model.triton_model}\0{payload}".encode()).hexdigest()
    return f"emb:{digest}"


def bounded_inputs(model: ServedModel, texts: EmbeddingInputs, truncate: bool) -> EmbeddingInputs:
    """Token-id inputs checked against what the model reads: ids in its vocabulary, rows no
    longer than its window (cut to it with ``truncate``). Texts are measured by the model."""
    bounded: list[str | Sequence[int]] = []
    for index, item in enumerate(texts):
        if isinstance(item, str):
            bounded.append(item)
            continue
        where = f"input[{index}]" if len(texts) > 1 else "input"
        if model.vocab_size is not None and (
            bad := [t for t in item if not 0 <= t < model.vocab_size]
        ):
            raise InvalidRequestError(
                f"'{where}' holds token id {bad[0]}, outside the vocabulary of the model "
                f"'{model.id}' (ids 0 to {model.vocab_size - 1}).",
                param="input",
                code="invalid_value",
            )
        if len(item) > model.context_length and not truncate:
            raise InvalidRequestError(
                too_long_message(model, where, len(item)), param="input", code="invalid_value"
            )
        bounded.append(item[: model.context_length])
    return bounded


def too_long_message(model: ServedModel, where: str, tokens: int) -> str:
    return (
        f"'{where}' has {tokens} tokens, more than the maximum of {model.context_length} "
        f"tokens the model '{model.id}' reads. Shorten it, or send \"truncate\": true to "
        f"embed only its first {model.context_length} tokens."
    )


class EmbeddingService:
    """Looks inputs up in the cache, sends the misses to the backend in batches."""

    def __init__(
        self, backend: InferenceBackend, cache: BaseCache, batch_size: int, ttl_s: int
    ) -> None:
        self._backend = backend
        self._cache = cache
        self._batch_size = batch_size
        self._ttl_s = ttl_s

    async def embed(
        self, model: ServedModel, texts: EmbeddingInputs, request_id: str, truncate: bool = False
    ) -> Embeddings:
        """Vectors for ``texts`` in order; an input longer than the model reads is a 400
        unless ``truncate`` asks for it to be cut."""
        texts = bounded_inputs(model, texts, truncate)
        keys = [cache_key(model, text, truncate) for text in texts]
        cached: list[CachedEmbedding | None] = await self._cache.multi_get(keys)
        misses = [index for index, value in enumerate(cached) if value is None]
        computed = await self._compute(model, [texts[i] for i in misses], request_id, truncate)
        if computed:
            await self._cache.multi_set(
                [(keys[i], value) for i, value in zip(misses, computed, strict=True)],
                ttl=self._ttl_s,
            )
        for index, value in zip(misses, computed, strict=True):
            cached[index] = value
        rows = [value for value in cached if value is not None]
        vectors = np.stack([np.frombuffer(vector, dtype=np.float32) for vector, _ in rows])
        return Embeddings(
            vectors=vectors,
            token_counts=[count for _, count in rows],
            cache_hits=len(texts) - len(misses),
        )

    async def close(self) -> None:
        client = getattr(self._cache, "client", None)
        if client is None:
            await self._cache.close()
            return
        # aiocache 0.12 closes redis-py clients through the deprecated close() and leaves the
        # connection pool it created open (leaking sockets): close both directly instead.
        await client.aclose()
        await client.connection_pool.disconnect()

    async def _compute(
        self, model: ServedModel, texts: EmbeddingInputs, request_id: str, truncate: bool
    ) -> list[CachedEmbedding]:
        results: list[CachedEmbedding] = []
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            try:
                result = await self._backend.embed(
                    model.triton_model, batch, request_id, truncate=truncate
                )
            except InvalidRequestError as exc:
                # What the model refuses (a text longer than it reads) is about the input.
                exc.param = exc.param or "input"
                raise
            results.extend(
                (vector.astype(np.float32).tobytes(), count)
                for vector, count in zip(result.vectors, result.token_counts, strict=True)
            )
        return results
