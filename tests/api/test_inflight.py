"""The in-flight journal: what a request had delivered survives a crash and is settled once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.types import Message

from api.app import create_app
from api.generation.assembly import ReplyState
from api.limits.limiter import Limiter
from api.limits.memory import MemoryLimiter
from api.limits.redis import RedisLimiter
from api.limits.rules import Kind, Measure, Plan, Rule
from api.settings import ModelPrice
from api.storage import migrate
from api.storage.engine import create_engine
from api.storage.tables import usage_records
from api.storage.usage import UsageStore
from api.usage.inflight import SUFFIX, InflightTable, SlotState, read_slots
from api.usage.meter import RequestUsage
from api.usage.recorder import UsageRecorder
from api.usage.records import UsageRecord
from tests.api import asgi
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, gateway_settings
from tests.api.servers import REDIS_URL

CHAT = "/v1/chat/completions"
PRICES = {"m": ModelPrice(prompt=1.0, completion=2.0)}
DEAD = f"{2**22 + 1}@{os.uname().nodename}"  # a pid that cannot exist: a dead process
PLAN = Plan(
    tag="o:org_1",
    rules=(
        Rule("k:key_1:day:20260101", Kind.QUOTA, Measure.TOKENS, 100_000, 500, 86400.0),
        Rule("k:key_1:conc", Kind.LEASE, Measure.CONCURRENCY, 5, 1, 900.0),
    ),
)


def fields(record_id: str) -> dict[str, str]:
    return {
        "id": record_id,
        "request_id": f"req-{record_id}",
        "created_at": datetime.now(UTC).isoformat(),
        "key_id": "key_1",
        "org_id": "org_1",
        "model": "m",
        "endpoint": CHAT,
    }


def slots_in(folder: Path) -> list[tuple[SlotState, int, int, bytes]]:
    return [
        (view.state, view.prompt_tokens, view.completion_tokens, view.admission)
        for path in sorted(folder.glob(f"*{SUFFIX}"))
        for view in read_slots(path)
    ]


def test_what_a_killed_process_stored_in_its_slots_is_read_back(tmp_path: Path) -> None:
    """A real SIGKILL: the stores into the mapping outlive the process, files and all."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from api.usage.inflight import InflightTable
        table = InflightTable(Path(sys.argv[1]), "owner", slots_per_file=4)
        slots = [table.admit(b'{"n": %d}' % i) for i in range(6)]  # two files
        slots[1].release()
        for i, slot in enumerate(slots):
            slot.progress(10 + i, 100 + i)  # a no-op on the released slot
        slots[3].settling()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert done.returncode == -9
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
    found = sorted(slots_in(tmp_path), key=lambda slot: slot[3])
    running, settling = SlotState.RUNNING, SlotState.SETTLING
    assert found == [
        (running, 10, 100, b'{"n": 0}'),
        (running, 12, 102, b'{"n": 2}'),
        (settling, 13, 103, b'{"n": 3}'),
        (running, 14, 104, b'{"n": 4}'),
        (running, 15, 105, b'{"n": 5}'),
    ]


def test_slots_are_reused_and_the_files_go_when_nothing_is_in_flight(tmp_path: Path) -> None:
    table = InflightTable(tmp_path, "owner", slots_per_file=2)
    first = table.admit(b"{}")
    assert first is not None
    first.release()
    first.release()  # a second release is harmless and frees nothing twice
    slots = [table.admit(b"{}") for _ in range(3)]
    assert table.in_flight == 3 and len(list(tmp_path.iterdir())) == 2  # the slot was reused
    assert table.admit(b"x" * 5000) is None  # too large to journal: the request still runs
    table.close()  # requests still in flight: their slots stay for a replay
    assert len(slots_in(tmp_path)) == 3
    for slot in slots:
        assert slot is not None
        slot.release()
        slot.progress(1, 1)  # a request that outlives its slot writes nothing
    table.close()
    assert not list(tmp_path.iterdir())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    redis_limiter = RedisLimiter(Redis.from_url(REDIS_URL), redis_prefix)
    yield redis_limiter
    await redis_limiter.close()


async def open_store(tmp_path: Path) -> UsageStore:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    await migrate.upgrade(engine)
    return UsageStore(engine)


async def stored(store: UsageStore) -> dict[str, tuple[int, int, int, bool]]:
    query = select(
        usage_records.c.id,
        usage_records.c.status,
        usage_records.c.prompt_tokens,
        usage_records.c.completion_tokens,
        usage_records.c.interrupted,
    )
    async with store._engine.connect() as conn:
        rows = await conn.execute(query)
        return {
            row.id: (row.status, row.prompt_tokens, row.completion_tokens, row.interrupted)
            for row in rows
        }


async def test_a_crash_settles_each_request_in_flight_once(
    tmp_path: Path, limiter: Limiter
) -> None:
    store, journal = await open_store(tmp_path), tmp_path / "journal"
    crashed = UsageRecorder(store, journal, flush_interval_s=60, batch_size=100)
    await crashed.start()
    for lease in ("a", "b", "c", "d"):
        assert (await limiter.admit(PLAN, lease)).allowed
    streaming, waiting, settling, finishing = (
        crashed.admit(fields(name), PLAN, name) for name in ("a", "b", "c", "d")
    )
    assert streaming and waiting and settling and finishing
    streaming.status(200)
    streaming.progress(7, 41)
    settling.status(200)
    settling.progress(7, 12)
    settling.settling()  # it settles its own reservation: a replay must not do it again
    finishing.settling()
    # Killed between its record's journal line and the release of its slot.
    final = UsageRecord(
        "d", "req-d", datetime.now(UTC), "key_1", "org_1", "m", CHAT, 200, 7, 9, 0, 5.0, 25_000
    )
    crashed.record(final)
    # No close(): the process is gone. The next one (same pid here, like a container's) replays.
    kept = tmp_path / "kept"
    shutil.copytree(journal, kept)
    for attempt in range(2):
        if attempt:  # a crash during the first replay, before its files were removed
            for path in kept.iterdir():
                shutil.copy(path, journal / f"{DEAD}@{path.name.rsplit('@', 1)[1]}")
        recorder = UsageRecorder(store, journal, flush_interval_s=60, batch_size=100)
        await recorder.start()
        assert await recorder.recover(limiter, PRICES) == (0 if attempt else 3)
        await recorder.close()
        assert await stored(store) == {
            "a": (200, 7, 41, True),
            "b": (500, 0, 0, True),  # died before its response started
            "c": (200, 7, 12, True),
            "d": (200, 7, 9, False),  # recorded before the crash: never settled again
        }
    assert not list(journal.iterdir())
    if isinstance(limiter, RedisLimiter):
        await expect_released(limiter)
    rows = await store.summary(["model"], "2000-01-01", "2999-01-01")
    assert rows[0]["requests"] == 4 and rows[0]["completion_tokens"] == 41 + 12 + 9
    assert rows[0]["cost_nanos"] == 25_000 + (7 * 1 + 41 * 2) * 1000 + (7 + 12 * 2) * 1000
    await crashed.close()  # (only to free its files here; its record "d" stays counted once)
    assert (await store.summary(["model"], "2000-01-01", "2999-01-01")) == rows
    await store._engine.dispose()


async def expect_released(limiter: RedisLimiter) -> None:
    """Leases a and b (still running) are released, their quota settled to what they used;
    c and d settled themselves (not done here, so their reservations still count)."""
    client = Redis.from_url(REDIS_URL)
    try:
        quota = int(await client.get(limiter.key(PLAN, PLAN.rules[0].key)) or 0)
        leases = await client.zrange(limiter.key(PLAN, PLAN.rules[1].key), 0, -1)
    finally:
        await client.aclose()
    assert quota == (7 + 41) + 0 + 500 + 500
    assert sorted(leases) == [b"c", b"d"]
    await limiter.release_interrupted(PLAN, "a", 7 + 41)  # once per lease, however often
    client = Redis.from_url(REDIS_URL)
    try:
        assert int(await client.get(limiter.key(PLAN, PLAN.rules[0].key)) or 0) == quota
    finally:
        await client.aclose()


def test_the_journal_counts_each_frame_before_the_client_gets_it(
    tmp_path: Path, backend: FakeBackend
) -> None:
    """At every write to the client, the journal holds exactly the tokens written so far; a
    crash at the third write is settled from that, and a request that finished is not."""
    backend.reply = " ".join(f"w{i}" for i in range(50))
    settings = gateway_settings(tmp_path, usage={"journal_dir": tmp_path / "j"})
    body = orjson.dumps(
        {
            "model": "tiny-chat",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "logprobs": True,
            "max_tokens": 50,
        }
    )
    seen: list[tuple[int, int]] = []
    snapshots: list[bytes] = []

    def check(sent: list[Message]) -> None:
        if sent[-1]["type"] != "http.response.body":
            return
        (path,) = (tmp_path / "j").glob(f"*{SUFFIX}")
        ((_, prompt, completion, _),) = slots_in(tmp_path / "j")
        seen.append((completion, delivered_tokens(sent)))
        assert prompt == 7
        snapshots.append(path.read_bytes())

    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        asgi.post(c, CHAT, body, hang_up_after=6, on_send=check)
        assert not slots_in(tmp_path / "j")  # recorded: its slot is free
    assert len(seen) == 6 and all(journaled == got for journaled, got in seen), seen
    assert seen[2][0] >= 3
    # The process "died" at the third write: the same database already has the finished
    # record (nothing is added); a database without it gets the interrupted one.
    for folder, expected in ((tmp_path, 0), (tmp_path / "other", 1)):
        journal = folder / "j"
        journal.mkdir(parents=True, exist_ok=True)
        (journal / f"{DEAD}@x{SUFFIX}").write_bytes(snapshots[2])
        settings = gateway_settings(folder, usage={"journal_dir": journal})
        app = create_app(settings, backend_factory=lambda _: backend)
        with TestClient(app, headers=AUTH) as c:
            store = c.app.state.gateway.usage  # type: ignore[attr-defined]
            records = c.portal.call(stored, store)  # type: ignore[union-attr]
        interrupted = [row for row in records.values() if row[3]]
        assert len(interrupted) == expected
        if expected:
            assert interrupted[0] == (200, 7, seen[2][1], True)


def delivered_tokens(sent: list[Message]) -> int:
    """Tokens in the chunks the client got: one log-probability entry per token."""
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    tokens = 0
    for line in text.split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in orjson.loads(line[6:]).get("choices", []):
                tokens += len((choice.get("logprobs") or {}).get("content") or [])
    return tokens


def test_the_journaled_counts_are_the_meters_with_several_choices(tmp_path: Path) -> None:
    table = InflightTable(tmp_path, "owner")
    usage = RequestUsage(prompt_tokens=2, completion_tokens=1)
    usage.track([ReplyState(prompt_tokens=5, completion_tokens=3)])
    # Two prompts x n=2: each prompt's tokens count once, every choice's completion.
    usage.track([ReplyState(4, 1), ReplyState(4, 2), ReplyState(6, 3), ReplyState(6, 4)], 2)
    usage.delivering()  # no slot yet: nothing to do
    usage.slot = table.admit(b"{}")
    usage.delivering()
    ((_, prompt, completion, _),) = slots_in(tmp_path)
    assert (prompt, completion) == (usage.prompt(), usage.completion()) == (2 + 5 + 10, 14)
    assert usage.slot is not None
    usage.slot.release()
    table.close()
