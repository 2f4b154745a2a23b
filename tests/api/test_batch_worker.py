"""The batch worker's manners: it yields to interactive traffic, works on S3, and reports."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from api.app import build_services, create_app
from api.batches.cli import progress_line, watch
from api.batches.state import build_stores
from api.batches.worker import BatchWorker
from api.settings import Settings
from api.storage.batches import Counts
from api.storage.engine import create_engine
from tests.api.batching import chat_line, create_batch, jsonl, read_lines, upload, wait_for
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH


async def test_no_line_starts_while_interactive_requests_fill_the_share() -> None:
    settings = Settings(
        resilience={"max_in_flight": 4}, batches={"concurrency": 3, "interactive_share": 0.5}
    )
    services = build_services(settings, FakeBackend())
    engine = create_engine(settings.database.url.replace("api.db", "unused.db"))
    worker = BatchWorker(services, build_stores(engine, settings), recorder=None)  # type: ignore[arg-type]
    admission = services.resilience.admission
    assert worker._free_slots() == 3
    async with admission.admit("ensemble"):
        assert worker._free_slots() == 3  # one interactive request: below half of 4
        async with admission.admit("ensemble"):
            assert worker._free_slots() == 0  # two: the batch waits
    await engine.dispose()


def test_a_batch_with_files_in_s3(monkeypatch: pytest.MonkeyPatch, backend: FakeBackend) -> None:
    monkeypatch.setenv("API_FILES__BACKEND", "s3")
    monkeypatch.setenv("API_FILES__S3_BUCKET", "batches")
    monkeypatch.setenv("API_FILES__S3_REGION", "us-east-1")
    monkeypatch.setenv("API_BATCHES__POLL_INTERVAL_S", "0.02")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="batches")
        app = create_app(Settings(), backend_factory=lambda _: backend)
        with TestClient(app, headers=AUTH) as client:
            done = wait_for(
                client, create_batch(client, upload(client, jsonl([chat_line("s3")]))["id"])["id"]
            )
            assert [line["custom_id"] for line in read_lines(client, done["output_file_id"])] == [
                "s3"
            ]
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket="batches")["Contents"]}
    assert f"files/{done['output_file_id']}" in keys
    assert len(keys) == 2  # the input and the output file


def test_progress_line() -> None:
    line = progress_line("in_progress", Counts(total=10, completed=4, failed=1))
    assert line.startswith("[" + "#" * 15 + "." * 15 + "]")
    assert "5/10" in line.replace(" ", "")
    assert "(completed 4, failed 1) in_progress" in line
    assert "0%" in progress_line("validating", Counts())


def test_watch_draws_until_the_batch_ends(client: TestClient, tmp_path: Path) -> None:
    done = wait_for(
        client, create_batch(client, upload(client, jsonl([chat_line("w")]))["id"])["id"]
    )
    settings = Settings()
    out = io.StringIO()
    assert asyncio.run(watch(settings, done["id"], 0.01, out)) == 0
    assert "1/1" in out.getvalue().replace(" ", "")
    assert out.getvalue().rstrip().endswith("completed")
    missing = io.StringIO()
    assert asyncio.run(watch(settings, "batch_nope", 0.01, missing)) == 1
