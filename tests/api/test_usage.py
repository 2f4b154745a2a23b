from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import ModelPrice
from api.storage import migrate
from api.storage.engine import create_engine
from api.storage.usage import UsageStore
from api.usage.pricing import cost_nanos, format_usd
from api.usage.recorder import UsageRecorder
from api.usage.records import UsageRecord
from tests.api import asgi
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, gateway_settings

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
PRICES = {"tiny-chat": {"prompt": 1.0, "completion": 2.0}}


def flush(client: TestClient) -> None:
    client.portal.call(client.app.state.gateway.recorder.flush)  # type: ignore[attr-defined,union-attr]


def test_cost_is_exact_in_nano_dollars() -> None:
    prices = {"m": ModelPrice(prompt=0.15, completion=0.6, cached=0.075)}
    assert cost_nanos(prices, "m", 1000, 100, cached_tokens=400) == 90_000 + 30_000 + 60_000
    assert cost_nanos(prices, "other", 1000, 100) == 0
    assert format_usd(150_000) == "0.00015"


def test_usage_is_recorded_costed_and_queryable(tmp_path: Path, backend: FakeBackend) -> None:
    settings = gateway_settings(tmp_path, usage={"journal_dir": tmp_path / "j", "prices": PRICES})
    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        reply = c.post(CHAT, json=HELLO)
        assert reply.headers["x-request-cost"] == format_usd((7 * 1 + 6 * 2) * 1000)
        c.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "a b c"})
        flush(c)
        own = c.get("/v1/usage").json()["data"]
        by_model = {row["model"]: row for row in own}
        assert by_model["tiny-chat"]["prompt_tokens"] == 7
        assert by_model["tiny-chat"]["completion_tokens"] == 6
        assert by_model["tiny-chat"]["cost_usd"] == "0.000019"
        assert by_model["all-minilm-l6-v2"]["prompt_tokens"] == 3
        admin = c.get("/v1/admin/usage", params={"group_by": "org_id"}).json()["data"]
        assert admin[0]["requests"] >= 2  # the usage query itself is recorded too
        assert c.get("/v1/usage", params={"group_by": "nope"}).status_code == 400


def test_a_stream_cut_short_records_what_was_generated(
    tmp_path: Path, backend: FakeBackend
) -> None:
    backend.reply = " ".join(f"w{i}" for i in range(200))
    settings = gateway_settings(tmp_path)
    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        with c.stream("POST", CHAT, json={**HELLO, "stream": True, "max_tokens": 200}) as s:
            for _ in zip(range(3), s.iter_lines(), strict=False):
                pass
        flush(c)
        rows = c.get("/v1/usage").json()["data"]
    chat = next(row for row in rows if row["model"] == "tiny-chat")
    assert chat["prompt_tokens"] == 7 and 0 < chat["completion_tokens"] <= 200


def test_a_record_keeps_its_day_row_and_journal_line_consistent() -> None:
    created = datetime(2026, 3, 9, 23, 59, 59, 999_999, tzinfo=UTC)
    record = UsageRecord("r1", "req", created, "key_1", "org_1", "m", "/v1/x", 200, 5, 7, 0, 1.0, 9)
    assert record.day == "2026-03-09" == created.strftime("%Y-%m-%d")
    row = record.to_row()
    assert row["created_at"] is created and row["completion_tokens"] == 7
    line = record.to_json()
    assert line["created_at"] == "2026-03-09T23:59:59.999999+00:00"
    assert UsageRecord.from_json(orjson.loads(orjson.dumps(line))) == record


async def test_a_crashed_process_journal_is_replayed_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    await migrate.upgrade(engine)
    store = UsageStore(engine)
    record = UsageRecord(
        "r1", "req", datetime.now(UTC), "key_1", "org_1", "m", "/v1/x", 200, 5, 7, 0, 1.0, 9
    )
    journal = tmp_path / "journal"
    journal.mkdir()
    # A process that died (pid 2**22 + 1 cannot exist) left a journal with one record twice.
    line = orjson.dumps(record.to_json()) + b"\n"
    (journal / f"{2**22 + 1}@{os.uname().nodename}@x.jsonl").write_bytes(line + line + b"{tor")
    for _ in range(2):  # two starts: the second finds nothing left to replay
        recorder = UsageRecorder(store, journal, flush_interval_s=60, batch_size=10)
        await recorder.start()
        await recorder.close()
    rows = await store.summary(["model"], "2000-01-01", "2999-01-01")
    assert rows[0]["requests"] == 1 and rows[0]["completion_tokens"] == 7
    assert await store.count_records() == 1
    assert not list(journal.iterdir())
    await engine.dispose()


async def test_records_survive_until_written(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    await migrate.upgrade(engine)
    store = UsageStore(engine)
    recorder = UsageRecorder(store, tmp_path / "j", flush_interval_s=60, batch_size=1000)
    await recorder.start()
    for index in range(100):
        recorder.record(
            UsageRecord(f"r{index}", "q", datetime.now(UTC), "k", "o", "m", "/", 200, 1, 1, 0, 1, 0)
        )
    assert await store.count_records() == 0  # off the response path: nothing written yet
    journaled = sum(len(p.read_bytes().splitlines()) for p in (tmp_path / "j").iterdir())
    assert journaled == 100
    await recorder.close()  # shutdown flushes
    assert await store.count_records() == 100
    await engine.dispose()


class SlowStore:
    """A store whose writes take a while and must never be cut short."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.writing = asyncio.Event()
        self.cancelled = False

    async def write(self, records: list[UsageRecord]) -> int:
        self.writing.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.written += [record.id for record in records]
        return len(records)


async def test_shutdown_lets_a_write_in_progress_finish(tmp_path: Path) -> None:
    """Cancelling a write mid-transaction would leave SQLite's write lock held, and the final
    flush would then wait on it until the busy timeout."""
    store = SlowStore()
    recorder = UsageRecorder(store, tmp_path / "j", flush_interval_s=60, batch_size=1)  # type: ignore[arg-type]
    await recorder.start()
    for index in range(3):
        recorder.record(
            UsageRecord(f"r{index}", "q", datetime.now(UTC), "k", "o", "m", "/", 200, 1, 1, 0, 1, 0)
        )
    await asyncio.wait_for(store.writing.wait(), 5)
    await recorder.close()
    assert not store.cancelled
    assert sorted(store.written) == ["r0", "r1", "r2"]
    assert not list((tmp_path / "j").iterdir())


@pytest.mark.postgres
async def test_usage_store_on_postgres(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    await migrate.upgrade(engine)
    await migrate.upgrade(engine)  # idempotent
    assert await migrate.current_revision(engine) == migrate.head_revision()
    store = UsageStore(engine)
    now = datetime.now(UTC)
    records = [
        UsageRecord(f"r{i}", "q", now, "k", "o", "m", "/", 200 if i else 500, 2, 3, 0, 1.0, 5)
        for i in range(10)
    ]
    assert await store.write(records) == 10
    assert await store.write(records[:5]) == 0  # a replay inserts and counts nothing
    day = now.strftime("%Y-%m-%d")
    (row,) = await store.summary(["day", "model"], day, day, org_id="o")
    assert (row["requests"], row["errors"], row["prompt_tokens"], row["cost_nanos"]) == (
        10,
        1,
        20,
        50,
    )
    await engine.dispose()


def test_a_client_that_leaves_mid_stream_is_billed_for_what_was_generated(
    tmp_path: Path, backend: FakeBackend
) -> None:
    backend.reply = " ".join(f"w{i}" for i in range(200))
    backend.chunk_delay_s = 0.01
    settings = gateway_settings(tmp_path)
    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        body = orjson.dumps({**HELLO, "stream": True, "max_tokens": 200})
        sent = asgi.post(c, CHAT, body, hang_up_after=3)
        assert sent[0]["status"] == 200 and len(sent) == 4  # the start, then three writes
        assert backend.closed_streams == 1  # generation stopped: the backend stream was closed
        flush(c)
        rows = c.get("/v1/usage").json()["data"]
    chat = next(row for row in rows if row["model"] == "tiny-chat")
    assert chat["prompt_tokens"] == 7 and 3 <= chat["completion_tokens"] < 200
