"""Helpers for the file and batch tests: JSONL inputs, uploads, waiting for a batch."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.testclient import TestClient

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def chat_line(custom_id: str, content: str = "Hi", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "tiny-chat", "messages": [{"role": "user", "content": content}], **body},
    }


def jsonl(lines: list[dict[str, Any] | str]) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
    ).encode()


def upload(client: TestClient, data: bytes, purpose: str = "batch") -> dict[str, Any]:
    response = client.post(
        "/v1/files", files={"file": ("input.jsonl", data)}, data={"purpose": purpose}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def create_batch(
    client: TestClient, file_id: str, endpoint: str = "/v1/chat/completions"
) -> dict[str, Any]:
    response = client.post(
        "/v1/batches",
        json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(client: TestClient, batch_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] in TERMINAL:
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not finish: {batch}")


def read_lines(client: TestClient, file_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]
