"""kill -9 of the API under 20 streams: after a restart each interrupted request has one usage
record with the tokens its client got, its reservation is released, and nothing counts twice.

Real processes: Triton through the launcher, the API as ``python -m api serve`` with its
SQLite database, usage journal and Redis limiter, killed with SIGKILL and started again.
Clients count the tokens they received from the log-probability entries of complete SSE
frames (one entry per token).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from api.settings import ServedModel, default_models
from tests.api.servers import REDIS_URL, redis_prefix
from tests.e2e.harness import LONG_REPLY, Api, Triton, wait_for

__all__ = ["redis_prefix"]  # the fixture, shared with the API tests

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

CHAT = "/v1/chat/completions"
STREAMS = 20
ENGINE_SLOTS = 24
FINISHED = 5


def models_json() -> str:
    """The default models, the chat model admitting every stream at once (where the settings
    bound a model's admissions)."""
    models = []
    for model in default_models():
        data = model.model_dump(mode="json")
        if model.id == "tiny-chat" and "max_in_flight" in ServedModel.model_fields:
            data["max_in_flight"] = ENGINE_SLOTS
        models.append(data)
    return json.dumps(models)


@dataclass
class Client:
    """One streaming client: the tokens of each complete frame it received."""

    request_id: str
    status: int = 0
    frames: list[int] = field(default_factory=list)
    error: str = ""
    # The reply ended ([DONE]) before the kill: a finished request, accounted exactly.
    done: bool = False

    @property
    def tokens(self) -> int:
        return sum(self.frames)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("usage-crash-logs")


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    # Every stream decodes at once, so each one has tokens when the API is killed.
    slots = str(ENGINE_SLOTS)
    repository = tmp_path_factory.mktemp("usage-crash-repository")
    with Triton(
        logs, repository, TRITON_MAX_BATCH_SIZE=slots, TRITON_MAX_NUM_SEQUENCES=slots
    ) as server:
        yield server


def stream(api: Api, client: Client) -> None:
    body = {**LONG_REPLY, "stream": True, "logprobs": True}
    headers = {**api.headers, "x-request-id": client.request_id}
    buffer = b""
    try:
        with httpx.stream(
            "POST", f"{api.url}{CHAT}", json=body, headers=headers, timeout=120
        ) as response:
            client.status = response.status_code
            for data in response.iter_raw():
                buffer += data
                *frames, buffer = buffer.split(b"\n\n")
                client.frames += [tokens_in(frame) for frame in frames]
                client.done = client.done or b"data: [DONE]" in frames
    except httpx.HTTPError as exc:  # the server was killed: the stream breaks off
        client.error = type(exc).__name__


def tokens_in(frame: bytes) -> int:
    payload = frame.removeprefix(b"data: ")
    if not payload.startswith(b"{"):
        return 0
    choices = json.loads(payload).get("choices") or []
    return sum(len((choice.get("logprobs") or {}).get("content") or []) for choice in choices)


def records(api: Api) -> dict[str, list[tuple[int, int, int, int]]]:
    """Usage records by request id: (status, prompt, completion, interrupted)."""
    database = api.env["API_DATABASE__URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT request_id, status, prompt_tokens, completion_tokens, interrupted"
            " FROM usage_records"
        ).fetchall()
    found: dict[str, list[tuple[int, int, int, int]]] = {}
    for request_id, *values in rows:
        found.setdefault(request_id, []).append(tuple(values))
    return found


def limiter_state(prefix: str) -> tuple[int, int]:
    """(tokens counted by the key's daily quota, concurrency leases held by the key)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        (quota,) = client.scan_iter(match=f"{prefix}:*:k:*:day:*")
        # A lease set without members is deleted.
        leases = client.scan_iter(match=f"{prefix}:*:k:*:conc")
        return int(client.get(quota) or 0), sum(int(client.zcard(key)) for key in leases)
    finally:
        client.close()


def test_a_killed_api_settles_every_interrupted_stream_once(
    triton: Triton, logs: Path, redis_prefix: str
) -> None:
    api = Api(
        logs,
        "crash",
        triton.grpc_url,
        API_REDIS_URL=REDIS_URL,
        API_LIMITS__REDIS_PREFIX=redis_prefix,
        API_AUTH__BOOTSTRAP_TIER="default",  # a daily token quota and a concurrency limit
        API_MODELS=models_json(),
        # Every stream must start: on a busy machine 20 prefills can take longer than the
        # default wait for a first token (this test is about accounting, not latency).
        API_RESILIENCE__QUEUE_TIMEOUT_S="120",
        API_RESILIENCE__FIRST_RESPONSE_TIMEOUT_S="120",
    )
    api.start()
    try:
        run_and_crash(api, logs, redis_prefix)
    finally:
        api.stop()


def run_and_crash(api: Api, logs: Path, prefix: str) -> None:
    short = {**LONG_REPLY, "max_tokens": 8, "min_tokens": 8}
    for index in range(FINISHED):  # finished before the crash: exact, and never again
        reply = api.post(CHAT, short) if index else api.post(CHAT, short, timeout=120)
        assert reply.status_code == 200
    clients = [Client(f"crash-{index}-{uuid.uuid4().hex[:8]}") for index in range(STREAMS)]
    threads = [threading.Thread(target=stream, args=(api, client)) for client in clients]
    for thread in threads:
        thread.start()
    try:
        # A stream admitted first may finish its 990 tokens (4.6 s on a quiet host) before
        # the last one has its first three: such a stream is a finished request.
        wait_for(lambda: all(c.tokens >= 3 or c.done for c in clients), timeout_s=180)
    finally:  # (also when waiting failed: the threads end with the server)
        os.kill(api.pid, signal.SIGKILL)
        api.process.wait(timeout=10)  # type: ignore[union-attr]
        for thread in threads:
            # Each client still parses what it had buffered before it sees the cut: on a
            # busy 2-core host that can take longer than a few seconds for 20 of them.
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client never saw the cut"
    assert all(c.status == 200 and (c.error or c.done) for c in clients), clients
    cut = [client for client in clients if client.error]
    assert len(cut) >= STREAMS // 2, clients  # the crash path is what this test is about
    journal = Path(api.env["API_USAGE__JOURNAL_DIR"])
    # Kept to replay again later: a crash during the replay itself.
    shutil.copytree(journal, logs / "journal-at-crash")
    assert limiter_state(prefix)[1] == len(cut)  # the dead process's leases are still held
    started = time.monotonic()
    api.start()
    logger.info("restart with replay: %.2f s", time.monotonic() - started)
    first = check(api, clients, prefix)
    # Twice more: killed idle, then with the journal of the crash back in place (as if the
    # first replay had died before removing it): nothing is added, nothing released again.
    for again in range(2):
        os.kill(api.pid, signal.SIGKILL)
        api.process.wait(timeout=10)  # type: ignore[union-attr]
        if again:
            for path in (logs / "journal-at-crash").iterdir():
                shutil.copy(path, journal / path.name)
        api.start()
        assert check(api, clients, prefix) == first


def check(api: Api, clients: list[Client], prefix: str) -> dict[str, object]:
    found = records(api)
    finished = [rows for request_id, rows in found.items() if not request_id.startswith("crash")]
    assert len(finished) >= FINISHED and all(len(rows) == 1 for rows in finished)
    assert all(rows[0][2] == 8 and rows[0][3] == 0 for rows in finished[:FINISHED])
    exact, over = 0, []
    for client in clients:
        (row,) = found[client.request_id]  # one record, not two, not none
        status, prompt, completion, interrupted = row
        if client.done:
            assert (status, interrupted, completion) == (200, 0, client.tokens), (client, row)
            continue
        assert (status, interrupted) == (200, 1) and prompt > 0
        # Exact unless the kill fell between a frame's journal store and its socket write
        # (microseconds): then that one frame counts, never less than what was delivered.
        assert 0 <= completion - client.tokens <= max(client.frames), (client, row)
        exact += completion == client.tokens
        if completion != client.tokens:
            over.append(completion - client.tokens)
    logger.info(
        "%d interrupted streams, %d exact, %s over; %d tokens delivered",
        sum(not client.done for client in clients),
        exact,
        over,
        sum(client.tokens for client in clients),
    )
    quota, leases = limiter_state(prefix)
    used = sum(rows[0][1] + rows[0][2] for rows in found.values())
    # The reservations (prompt + 990 each) are gone: the quota holds what was used.
    assert leases == 0 and quota == used, (quota, used)
    return {"records": found, "quota": quota}
