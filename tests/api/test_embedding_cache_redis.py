"""The embedding cache shared through the real Redis server (two replicas, one cache)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from api.embedding_service import EmbeddingService, build_embedding_cache
from api.settings import default_models
from tests.api.fakes import FakeBackend

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


async def test_second_replica_hits_the_first_replicas_entries() -> None:
    namespace = f"test-emb-{uuid.uuid4().hex}"
    model = default_models()[1]
    first_backend, second_backend = FakeBackend(), FakeBackend()
    first = EmbeddingService(first_backend, build_embedding_cache(REDIS_URL, namespace), 8, 60)
    second = EmbeddingService(second_backend, build_embedding_cache(REDIS_URL, namespace), 8, 60)
    try:
        computed = await first.embed(model, ["alpha", "beta"], "r1")
        reused = await second.embed(model, ["beta", "gamma", "alpha"], "r2")
        assert second_backend.embedded == [["gamma"]]
        assert reused.cache_hits == 2
        assert np.array_equal(reused.vectors[0], computed.vectors[1])
        assert reused.token_counts[2] == computed.token_counts[0]
    finally:
        await first._cache.clear(namespace=namespace)
        await first.close()
        await second.close()
