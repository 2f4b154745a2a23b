"""Quotas count what runs: every prompt x n is reserved, holds a concurrency slot, and bills
its prompt tokens (a repeated prompt as often as it is sent)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from starlette.testclient import TestClient

from api.app import create_app
from api.limits.estimate import estimate
from api.limits.limiter import Limiter
from api.limits.memory import MemoryLimiter
from api.limits.redis import RedisLimiter
from api.limits.rules import Kind, Measure, Plan, Rule
from api.registry import ModelRegistry
from api.settings import default_models
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY, gateway_settings
from tests.api.servers import REDIS_URL

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
FIFTY: dict[str, Any] = {
    "model": "tiny-chat",
    "prompt": [f"prompt {i}" for i in range(50)],
    "max_tokens": 100,
}


def demand_of(body: dict[str, Any]) -> Any:
    return estimate(orjson.dumps(body), ModelRegistry(default_models()))


@pytest.mark.parametrize(
    ("body", "choices"),
    [
        (FIFTY, 50),
        ({**FIFTY, "n": 2}, 100),
        ({"model": "tiny-chat", "prompt": "one", "n": 3, "max_tokens": 100}, 3),
        ({"model": "tiny-chat", "prompt": [1, 2, 3], "max_tokens": 100}, 1),
        ({"model": "tiny-chat", "prompt": [[1, 2], [3]], "max_tokens": 100}, 2),
        ({"model": "tiny-chat", "prompt": ["a", "a"], "best_of": 3, "max_tokens": 100}, 6),
        ({"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], "n": 4}, 4),
    ],
)
def test_every_choice_is_reserved(body: dict[str, Any], choices: int) -> None:
    demand = demand_of(body)
    assert demand.choices == choices
    completion = body.get("max_tokens", 128)  # tiny-chat's default_max_tokens
    assert demand.tokens >= choices * completion


def tight_client(tmp_path: Path, backend: FakeBackend, **tier: int) -> TestClient:
    settings = gateway_settings(
        tmp_path,
        limits={"tiers": {"default": {}, "tight": tier}},
        auth={"bootstrap_key": TEST_KEY, "bootstrap_tier": "tight"},
        resilience={"max_choices_per_request": 64, "max_in_flight": 64},
        models=[
            {**model.model_dump(), "max_in_flight": 64} if model.id == "tiny-chat" else model
            for model in default_models()
        ],
    )
    return TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH)


def test_a_50_prompt_request_cannot_pass_a_1000_token_limit(tmp_path: Path) -> None:
    backend = FakeBackend()
    with tight_client(tmp_path, backend, tokens_per_minute=1000) as client:
        refused = client.post(COMPLETIONS, json=FIFTY)
        # Five prompts of 100 tokens each are reserved in full: 500+ of the 1,000.
        fitting = client.post(COMPLETIONS, json={**FIFTY, "prompt": FIFTY["prompt"][:5]})
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "Requested 5" in refused.json()["error"]["message"]  # 5,000 + the prompts
    assert len(backend.requests) == 5  # the refused request never reached the backend
    assert fitting.status_code == 200, fitting.text
    assert int(fitting.headers["x-ratelimit-remaining-tokens"]) <= 1000 - 5 * 100


def test_each_choice_holds_a_concurrency_slot(tmp_path: Path) -> None:
    backend = FakeBackend()
    with tight_client(tmp_path, backend, max_concurrent=2) as client:
        too_many = client.post(COMPLETIONS, json={**FIFTY, "prompt": ["a", "b", "c"]})
        too_many_n = client.post(
            CHAT,
            json={"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}], "n": 3},
        )
        fits = client.post(COMPLETIONS, json={**FIFTY, "prompt": ["a", "b"]})
    for response in (too_many, too_many_n):
        assert response.status_code == 429, response.text
        assert "concurrent" in response.json()["error"]["message"]
    assert fits.status_code == 200, fits.text
    assert len(backend.requests) == 2


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    redis_limiter = RedisLimiter(Redis.from_url(REDIS_URL), redis_prefix)
    yield redis_limiter
    await redis_limiter.close()


def lease_plan(tag: str, cost: int) -> Plan:
    return Plan(tag=tag, rules=(Rule("k:x:conc", Kind.LEASE, Measure.CONCURRENCY, 3, cost, 60.0),))


async def test_a_lease_takes_and_returns_one_slot_per_choice(limiter: Limiter) -> None:
    tag = f"o:test-{uuid.uuid4().hex[:8]}"
    two = await limiter.admit(lease_plan(tag, 2), "a")
    assert two.allowed and two.counters[0].remaining == 1
    assert not (await limiter.admit(lease_plan(tag, 2), "b")).allowed
    assert (await limiter.admit(lease_plan(tag, 1), "c")).allowed  # the last slot
    await limiter.settle(lease_plan(tag, 2), "a", used_tokens=0)
    assert (await limiter.admit(lease_plan(tag, 2), "b")).allowed  # both of a's came back
    too_large = await limiter.admit(lease_plan(tag, 4), "d")
    assert not too_large.allowed and too_large.blocked is not None


@pytest.fixture
def client(tmp_path: Path, backend: FakeBackend) -> Iterator[TestClient]:
    with tight_client(tmp_path, backend) as client:
        yield client


@pytest.mark.parametrize(
    ("prompt", "n", "prompts"),
    [(["same", "same"], 1, 2), (["same", "same", "same"], 2, 3), (["a", "b"], 2, 2), ("a", 3, 1)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_prompt_tokens_count_every_prompt_sent(
    client: TestClient, backend: FakeBackend, prompt: Any, n: int, prompts: int, stream: bool
) -> None:
    body = {"model": "tiny-chat", "prompt": prompt, "n": n, "max_tokens": 2, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
        with client.stream("POST", COMPLETIONS, json=body) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: {")]
        usage = orjson.loads(lines[-1].removeprefix("data: "))["usage"]
    else:
        usage = client.post(COMPLETIONS, json=body).json()["usage"]
    assert usage["prompt_tokens"] == prompts * backend.prompt_tokens
    assert usage["completion_tokens"] == prompts * n * 2
