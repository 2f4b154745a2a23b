"""Two real API processes sharing PostgreSQL and Redis: exact shared limits, revocation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.keys import AUTH, TEST_KEY
from tests.api.servers import REDIS_URL
from tests.e2e.conftest import free_port, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
LIMIT, REQUESTS = 5, 40


@pytest.fixture
def replicas(postgres_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[list[str]]:
    urls, processes = [], []
    tiers = {"default": {}, "unlimited": {}, "tight": {"requests_per_minute": LIMIT}}
    try:
        for index in range(2):
            port = free_port()
            env = {
                **os.environ,
                "API_PORT": str(port),
                "API_TRITON__URL": "127.0.0.1:9",  # no model route is called
                "API_DATABASE__URL": postgres_url,
                "API_REDIS_URL": REDIS_URL,
                "API_LIMITS__REDIS_PREFIX": redis_prefix,
                "API_LIMITS__TIERS": json.dumps(tiers),
                "API_AUTH__BOOTSTRAP_KEY": TEST_KEY,
                "API_AUTH__CACHE_TTL_S": "300",  # revocation must not wait for the cache
                "API_USAGE__JOURNAL_DIR": str(tmp_path / f"journal-{index}"),
            }
            with (tmp_path / f"api-{index}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "api", "serve"],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_live(url, process)
        yield urls
    finally:
        for process in processes:
            stop(process)


def _wait_live(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "API process exited"
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(url)


def _key(url: str, tier: str) -> dict[str, str]:
    org = httpx.post(f"{url}/v1/admin/organizations", json={"name": tier}, headers=AUTH)
    created = httpx.post(
        f"{url}/v1/admin/keys", json={"org_id": org.json()["id"], "tier": tier}, headers=AUTH
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}", "id": created.json()["id"]}


def test_parallel_requests_on_two_replicas_admit_exactly_k(replicas: list[str]) -> None:
    headers = _key(replicas[0], "tight")
    del headers["id"]

    async def burst() -> list[int]:
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            calls = [client.get(f"{replicas[i % 2]}/v1/models") for i in range(REQUESTS)]
            return [response.status_code for response in await asyncio.gather(*calls)]

    codes = asyncio.run(burst())
    assert codes.count(200) == LIMIT and codes.count(429) == REQUESTS - LIMIT


def test_revocation_takes_effect_on_the_next_request_on_every_replica(
    replicas: list[str],
) -> None:
    headers = _key(replicas[0], "unlimited")
    key_id = headers.pop("id")
    assert httpx.get(f"{replicas[1]}/v1/models", headers=headers).status_code == 200  # cached
    revoked = httpx.delete(f"{replicas[0]}/v1/admin/keys/{key_id}", headers=AUTH)
    assert revoked.status_code == 200
    for url in replicas:
        assert httpx.get(f"{url}/v1/models", headers=headers).status_code == 401
