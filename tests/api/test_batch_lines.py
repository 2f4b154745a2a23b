"""Leases and results of batch lines: what makes a resumed batch run each line once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.storage import migrate
from api.storage.batch_lines import LineStore, NewLine
from api.storage.batches import BatchRecord, BatchStore
from api.storage.engine import create_engine
from api.storage.time import utcnow
from tests.api.batching import chat_line, create_batch, jsonl, read_lines, upload, wait_for
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lines.db'}")
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def started_batch(engine: AsyncEngine, lines: int) -> str:
    now = utcnow()
    record = BatchRecord(
        id="batch_1", org_id="org_1", key_id="key_1", endpoint="/v1/chat/completions",
        input_file_id="file-1", completion_window="24h", status="validating", metadata=None,
        errors=None, output_file_id=None, error_file_id=None, total=0, created_at=now,
        expires_at=now,
    )  # fmt: skip
    await BatchStore(engine).add(record)
    new = [NewLine(index=i, custom_id=f"c{i}", request={"i": i}) for i in range(lines)]
    assert await LineStore(engine).load(record.id, new)
    assert not await LineStore(engine).load(record.id, new)  # started once only
    return record.id


async def test_two_workers_never_lease_the_same_line(engine: AsyncEngine) -> None:
    batch_id = await started_batch(engine, 5)
    store = LineStore(engine)
    first = await store.lease(batch_id, "a", 3, lease_s=60)
    second = await store.lease(batch_id, "b", 3, lease_s=60)
    assert [line.index for line in first] == [0, 1, 2]
    assert [line.index for line in second] == [3, 4]
    assert await store.lease(batch_id, "c", 3, lease_s=60) == []


async def test_concurrent_leases_split_the_lines(engine: AsyncEngine) -> None:
    batch_id = await started_batch(engine, 40)
    store = LineStore(engine)
    leased = await asyncio.gather(*(store.lease(batch_id, f"w{n}", 7, 60) for n in range(6)))
    indexes = [line.index for lines in leased for line in lines]
    assert len(indexes) == len(set(indexes))  # racing workers lose lines, never share them
    while more := await store.lease(batch_id, "late", 7, 60):
        indexes += [line.index for line in more]
    assert sorted(indexes) == list(range(40))


async def test_a_dead_workers_lines_run_again_and_commit_once(engine: AsyncEngine) -> None:
    batch_id = await started_batch(engine, 3)
    store = LineStore(engine)
    dead = await store.lease(batch_id, "dead", 3, lease_s=0.05)
    assert await store.finish(dead[0], "dead", True, '{"line": 0}')
    await asyncio.sleep(0.1)  # the dead worker's lease expires
    retaken = await store.lease(batch_id, "alive", 3, lease_s=60)
    assert [line.index for line in retaken] == [1, 2]
    # The dead worker wakes up: its late results are refused, the new holder's stored.
    assert not await store.finish(dead[1], "dead", True, '{"late": 1}')
    for line in retaken:
        assert await store.finish(line, "alive", line.index != 2, f'{{"line": {line.index}}}')
    assert not await store.finish(retaken[0], "alive", True, "{}")  # never twice
    assert await store.results(batch_id) == [
        ("done", '{"line": 0}'),
        ("done", '{"line": 1}'),
        ("failed", '{"line": 2}'),
    ]
    assert await store.unfinished(batch_id) == 0


async def test_release_gives_leases_back(engine: AsyncEngine) -> None:
    batch_id = await started_batch(engine, 2)
    store = LineStore(engine)
    await store.lease(batch_id, "a", 2, lease_s=60)
    await store.release("a")
    assert len(await store.lease(batch_id, "b", 2, lease_s=60)) == 2


@pytest.mark.postgres
def test_batch_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> None:
    monkeypatch.setenv("API_DATABASE__URL", postgres_url)
    monkeypatch.setenv("API_BATCHES__POLL_INTERVAL_S", "0.02")
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        data = jsonl([chat_line(f"p{i}") for i in range(6)] + ["oops"])
        done = wait_for(client, create_batch(client, upload(client, data)["id"])["id"])
        assert done["request_counts"] == {"total": 7, "completed": 6, "failed": 1}
        lines = read_lines(client, done["output_file_id"])
        assert [line["custom_id"] for line in lines] == [f"p{i}" for i in range(6)]
        assert client.get("/v1/batches").json()["data"][0]["id"] == done["id"]
