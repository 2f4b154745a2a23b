from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from starlette.testclient import TestClient

from api.app import create_app
from api.limits.headers import format_reset
from api.limits.limiter import Limiter
from api.limits.memory import MemoryLimiter
from api.limits.redis import RedisLimiter
from api.limits.rules import Kind, Measure, Plan, Rule
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY, gateway_settings
from tests.api.servers import REDIS_URL

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.02, "20ms"), (0.0, "0ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3723, "1h2m3s")],
)
def test_reset_is_formatted_like_openai(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    redis_limiter = RedisLimiter(Redis.from_url(REDIS_URL), redis_prefix)
    yield redis_limiter
    await redis_limiter.close()


def plan(*rules: Rule) -> Plan:
    return Plan(tag=f"o:test-{uuid.uuid4().hex[:8]}", rules=rules)


def bucket(limit: int, cost: int, measure: Measure = Measure.REQUESTS) -> Rule:
    return Rule(f"k:x:{measure}", Kind.BUCKET, measure, limit, cost, 60.0)


async def test_request_bucket_admits_exactly_the_limit(limiter: Limiter) -> None:
    p = plan(bucket(3, 1))
    decisions = [await limiter.admit(p, uuid.uuid4().hex) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.counters[0].remaining for d in decisions[:3]] == [2, 1, 0]
    assert 19 < decisions[3].retry_after_s <= 20.1
    assert decisions[3].blocked == p.rules[0]


async def test_tokens_are_reserved_then_settled(limiter: Limiter) -> None:
    first = plan(bucket(100, 60, Measure.TOKENS))
    second = Plan(tag=first.tag, rules=first.rules)
    assert (await limiter.admit(first, "a")).allowed
    assert not (await limiter.admit(second, "b")).allowed
    await limiter.settle(first, "a", used_tokens=10)  # 50 of the 60 reserved come back
    admitted = await limiter.admit(second, "c")
    assert admitted.allowed and admitted.counters[0].remaining < 40


async def test_concurrency_leases_are_released_on_settlement(limiter: Limiter) -> None:
    p = plan(Rule("k:x:conc", Kind.LEASE, Measure.CONCURRENCY, 2, 1, 60.0))
    assert (await limiter.admit(p, "a")).allowed and (await limiter.admit(p, "b")).allowed
    assert not (await limiter.admit(p, "c")).allowed
    await limiter.settle(p, "a", used_tokens=0)
    assert (await limiter.admit(p, "c")).allowed


async def test_daily_quota_counts_settled_tokens(limiter: Limiter) -> None:
    rule = Rule("k:x:day:20250101", Kind.QUOTA, Measure.TOKENS, 100, 80, 3600.0)
    p = plan(rule)
    assert (await limiter.admit(p, "a")).allowed
    small = Plan(tag=p.tag, rules=(Rule(rule.key, Kind.QUOTA, Measure.TOKENS, 100, 30, 3600.0),))
    denied = await limiter.admit(small, "b")
    assert not denied.allowed and denied.blocked is not None and denied.retry_after_s > 3500
    await limiter.settle(p, "a", used_tokens=20)
    assert (await limiter.admit(small, "c")).allowed


async def test_all_or_nothing(limiter: Limiter) -> None:
    tight = bucket(1, 1)
    loose = Rule("o:rpm", Kind.BUCKET, Measure.REQUESTS, 100, 1, 60.0)
    p = plan(loose, tight)
    assert (await limiter.admit(p, "a")).allowed
    denied = await limiter.admit(p, "b")
    assert not denied.allowed and denied.counters[0].remaining == 99  # nothing taken


async def test_revocation_marker_denies(limiter: Limiter) -> None:
    p = plan(bucket(10, 1))
    await limiter.revoke(p.tag, "key_1", ttl_s=60)
    assert (await limiter.admit(p, "a", revoked_key="key_1")).revoked
    assert (await limiter.admit(p, "a", revoked_key="key_2")).allowed


async def test_parallel_admissions_admit_exactly_k(limiter: Limiter) -> None:
    p = plan(bucket(7, 1), Rule("o:tpm", Kind.BUCKET, Measure.TOKENS, 700, 100, 60.0))
    decisions = await asyncio.gather(*(limiter.admit(p, uuid.uuid4().hex) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 7


@pytest.mark.redis
async def test_two_redis_clients_share_exact_counts(redis_prefix: str) -> None:
    replicas = [RedisLimiter(Redis.from_url(REDIS_URL), redis_prefix) for _ in range(2)]
    p = plan(bucket(5, 1))
    try:
        decisions = await asyncio.gather(
            *(replicas[i % 2].admit(p, uuid.uuid4().hex) for i in range(40))
        )
    finally:
        for replica in replicas:
            await replica.close()
    assert sum(d.allowed for d in decisions) == 5


def tight_settings(tmp_path: Path, **tier: int) -> object:
    tiers = {"default": {}, "tight": tier}
    return gateway_settings(
        tmp_path,
        limits={"tiers": tiers},
        auth={"bootstrap_key": TEST_KEY, "bootstrap_tier": "tight"},
    )


def test_429_with_openai_headers_and_headers_on_every_response(tmp_path: Path) -> None:
    settings = tight_settings(tmp_path, requests_per_minute=2, tokens_per_minute=1000)
    app = create_app(settings, backend_factory=lambda _: FakeBackend())  # type: ignore[arg-type]
    with TestClient(app, headers=AUTH) as client:
        first = client.post(CHAT, json=HELLO)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"] == "30s"
        assert first.headers["x-ratelimit-limit-tokens"] == "1000"
        with client.stream("POST", CHAT, json={**HELLO, "stream": True}) as stream:
            assert stream.headers["x-ratelimit-remaining-requests"] == "0"
            assert "x-ratelimit-remaining-tokens" in stream.headers
        limited = client.post(CHAT, json=HELLO)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    assert int(limited.headers["retry-after-ms"]) > 0
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"


async def test_parallel_requests_cannot_overrun_the_token_limit(tmp_path: Path) -> None:
    # Each request reserves 15 tokens (1 + 4 for the message, 10 max_tokens): 3 fit in 45.
    settings = tight_settings(tmp_path, tokens_per_minute=45)
    app = create_app(settings, backend_factory=lambda _: FakeBackend())  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
            body = {**HELLO, "max_tokens": 10}
            responses = await asyncio.gather(*(c.post(CHAT, json=body) for _ in range(12)))
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 3 + [429] * 9


def test_ip_limit_comes_before_authentication(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, limits={"ip_requests_per_minute": 3})
    with TestClient(create_app(settings, backend_factory=lambda _: FakeBackend())) as client:
        codes = [client.get("/v1/models").status_code for _ in range(4)]
        assert client.get("/health/live").status_code == 200
    assert codes == [401, 401, 401, 429]
