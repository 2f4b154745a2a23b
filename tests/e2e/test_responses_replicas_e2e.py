"""Responses served by any replica: two ``python -m api serve`` processes on one PostgreSQL
and one Triton. A response created on one is continued (``previous_response_id``) and read on
the other; a background response whose process is killed (SIGKILL) ends ``failed`` (or had
already completed), never ``in_progress`` forever: the surviving replica's sweeper ends it
once its lease runs out."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.servers import postgres_url
from tests.e2e.harness import Api, Triton, wait_for

__all__ = ["postgres_url"]  # the fixture

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

RESPONSES = "/v1/responses"
LEASE_S = "2"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("responses-replicas")


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    with Triton(logs, tmp_path_factory.mktemp("responses-repository")) as server:
        yield server


def replica(logs: Path, name: str, triton: Triton, database: str, key: str | None) -> Api:
    settings = {"API_DATABASE__URL": database, "API_RESPONSES__LEASE_S": LEASE_S}
    api = Api(logs, name, triton.grpc_url, **settings)
    if key is not None:  # both replicas take the same bootstrap key
        api.key = api.env["API_AUTH__BOOTSTRAP_KEY"] = key
    return api


def status_of(api: Api, response_id: str) -> str:
    found = httpx.get(f"{api.url}{RESPONSES}/{response_id}", headers=api.headers, timeout=30)
    assert found.status_code == 200, found.text
    status: str = found.json()["status"]
    return status


def test_two_replicas_share_responses(logs: Path, triton: Triton, postgres_url: str) -> None:
    first = replica(logs, "a", triton, postgres_url, None)
    first.start()
    second = replica(logs, "b", triton, postgres_url, first.key)
    try:
        second.start()
        created = first.post(
            RESPONSES, {"model": "tiny-chat", "input": "Hi", "max_output_tokens": 8}
        )
        assert created.status_code == 200, created.text
        response = created.json()
        follow_up = {
            "model": "tiny-chat",
            "input": "And again?",
            "previous_response_id": response["id"],
            "max_output_tokens": 8,
        }
        continued = second.post(RESPONSES, follow_up)
        assert continued.status_code == 200, continued.text
        items = httpx.get(
            f"{second.url}{RESPONSES}/{continued.json()['id']}/input_items",
            params={"order": "asc"},
            headers=second.headers,
        ).json()["data"]
        assert [item["type"] for item in items] == ["message"] * 3
        # Stored by B, read by A, as B returned it (completed, or incomplete when the reply
        # ran into max_output_tokens: that depends on the model, not on sharing).
        ended = continued.json()["status"]
        assert ended in ("completed", "incomplete")
        assert status_of(first, continued.json()["id"]) == ended

        # Long enough to be killed while running, whatever the model would say on its own:
        # the schema (guided decoding) asks for 200 numbers.
        numbers = {
            "type": "object",
            "properties": {"n": {"type": "array", "items": {"type": "integer"}, "minItems": 200}},
            "required": ["n"],
        }
        long = {
            "model": "tiny-chat",
            "input": "Count from 1 to 1000.",
            "background": True,
            "max_output_tokens": 900,
            "text": {"format": {"type": "json_schema", "name": "numbers", "schema": numbers}},
        }
        background = first.post(RESPONSES, long).json()
        wait_for(lambda: status_of(second, background["id"]) == "in_progress", 60)
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        first.process = None
        killed_at = time.monotonic()
        ended = wait_for(
            lambda: status_of(second, background["id"]) not in ("queued", "in_progress"), 60
        )
        final = httpx.get(
            f"{second.url}{RESPONSES}/{background['id']}", headers=second.headers
        ).json()
        logger.info(
            "background response ended %s %.1f s after the kill (lease %s s)",
            final["status"],
            time.monotonic() - killed_at,
            LEASE_S,
        )
        assert final["status"] in ("failed", "completed", "incomplete"), final
        if final["status"] == "failed":
            assert final["error"]["code"] == "server_error"
        assert ended < 30
    finally:
        second.stop()
        first.stop()
