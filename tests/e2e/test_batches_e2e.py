"""Batches against the real stack: the official SDK unmodified, and a worker killed mid-batch.

The crash test runs the standalone worker (``python -m api batches work``) on a database of
its own against the session's Triton, kills it with SIGKILL while lines are running, starts
it again and checks that the output file holds every line exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from api.batches.state import build_stores
from api.files.service import Files
from api.settings import Settings
from api.storage import migrate
from api.storage.batches import TERMINAL, BatchRecord, BatchStore
from api.storage.engine import create_engine
from api.storage.time import utcnow
from tests.e2e.conftest import ROOT, Stack

pytestmark = pytest.mark.e2e

LINES = 24


def request_lines(count: int, max_tokens: int = 12) -> bytes:
    lines = [
        {
            "custom_id": f"line-{index}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": f"What is {index} plus {index}?"}],
                "max_tokens": max_tokens,
                "temperature": 0,
            },
        }
        for index in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0) as sdk:
        yield sdk


def test_official_sdk_files_and_batches(client: openai.OpenAI) -> None:
    data = request_lines(8) + b"this line is not JSON\n"
    uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data)
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"suite": "e2e"},
    )
    assert batch.status == "validating"
    deadline = time.monotonic() + 180
    while batch.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (9, 8)
    assert batch.request_counts.failed == 1
    assert batch.metadata == {"suite": "e2e"}
    assert batch.output_file_id is not None and batch.error_file_id is not None
    output = [
        json.loads(line)
        for line in client.files.content(batch.output_file_id).text.split("\n")
        if line
    ]
    assert [line["custom_id"] for line in output] == [f"line-{i}" for i in range(8)]
    for line in output:
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200
        assert body["choices"][0]["message"]["content"].strip()
        assert body["usage"]["completion_tokens"] > 0
    (error,) = [
        json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()
    ]
    assert error["error"]["code"] == "invalid_json_line"
    assert client.batches.list(limit=5).data[0].id == batch.id
    assert batch.in_progress_at is not None and batch.completed_at is not None
    seconds = max(batch.completed_at - batch.in_progress_at, 1)
    sys.stderr.write(f"\n[batch sdk test] 9 lines in ~{seconds} s ({9 / seconds:.2f} lines/s)\n")


async def seed_batch(settings: Settings, data: bytes) -> str:
    """A batch as POST /v1/batches leaves it, written straight into the worker's database."""
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine)
        stores = build_stores(engine, settings)
        source = await stores.files.create("org_crash", "key_crash", "in.jsonl", "batch", data)
        now = utcnow()
        record = BatchRecord(
            id="batch_crashtest", org_id="org_crash", key_id="key_crash",
            endpoint="/v1/chat/completions", input_file_id=source.id, completion_window="24h",
            status="validating", metadata=None, errors=None, output_file_id=None,
            error_file_id=None, total=0, created_at=now, expires_at=now.replace(year=now.year + 1),
        )  # fmt: skip
        await stores.batches.add(record)
        return record.id
    finally:
        await engine.dispose()


async def snapshot(settings: Settings, batch_id: str) -> tuple[str, int, bytes | None]:
    """(status, lines finished, output file bytes once there is one)."""
    engine = create_engine(settings.database.url)
    try:
        store = BatchStore(engine)
        batch = await store.get(batch_id)
        assert batch is not None
        counts = (await store.counts([batch]))[batch_id]
        output = None
        if batch.output_file_id is not None:
            files: Files = build_stores(engine, settings).files
            record = await files.records.get(batch.output_file_id)
            assert record is not None
            output = await files.content(record)
        return batch.status, counts.completed + counts.failed, output
    finally:
        await engine.dispose()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "api", "batches", "work"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_until(
    settings: Settings, batch_id: str, done: int, timeout_s: float
) -> tuple[str, int, bytes | None]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = asyncio.run(snapshot(settings, batch_id))
        if state[1] >= done or state[0] in TERMINAL:
            return state
        time.sleep(0.2)
    raise AssertionError(f"batch stuck at {state}")


def test_a_killed_worker_resumes_and_writes_every_line_once(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        **os.environ,
        "API_TRITON__URL": stack.triton_grpc,
        "API_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
        "API_FILES__LOCAL_DIR": str(tmp_path / "files"),
        "API_USAGE__JOURNAL_DIR": str(tmp_path / "usage-journal"),
        "API_BATCHES__CONCURRENCY": "4",
        "API_BATCHES__LEASE_S": "3",
        "API_BATCHES__POLL_INTERVAL_S": "0.1",
        "API_LOG_FORMAT": "text",
    }
    env.pop("API_AUTH__BOOTSTRAP_KEY", None)
    settings = Settings(
        database={"url": env["API_DATABASE__URL"]},
        files={"local_dir": env["API_FILES__LOCAL_DIR"]},
    )
    batch_id = asyncio.run(seed_batch(settings, request_lines(LINES, max_tokens=24)))
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        status, finished, _ = wait_until(settings, batch_id, done=LINES // 4, timeout_s=240)
        assert status == "in_progress" and finished < LINES, "no chance to crash mid-batch"
        worker.send_signal(signal.SIGKILL)  # no clean-up: leases stay taken until they expire
        worker.wait()
        _, at_crash, _ = asyncio.run(snapshot(settings, batch_id))
        started = time.monotonic()
        worker = start_worker(env, log)
        status, finished, output = wait_until(settings, batch_id, done=LINES + 1, timeout_s=300)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert status == "completed", log.read_text()[-3000:]
    assert output is not None
    lines = [json.loads(line) for line in output.decode().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"line-{i}" for i in range(LINES)]
    assert all(line["response"]["status_code"] == 200 for line in lines)
    assert len({line["id"] for line in lines}) == LINES
    with capsys.disabled():
        sys.stderr.write(
            f"\n[batch crash test] {at_crash}/{LINES} lines done at the kill; the restarted "
            f"worker finished the other {LINES - at_crash} in {elapsed:.1f} s "
            f"({(LINES - at_crash) / elapsed:.2f} lines/s incl. a 3 s lease expiry)\n"
        )
    watch = subprocess.run(
        [sys.executable, "-m", "api", "batches", "watch", batch_id],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    assert f"{LINES}/{LINES}" in watch.stderr.replace(" ", "")
    assert "completed" in watch.stderr
