from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.errors import BackendUnavailableError
from api.settings import Settings
from tests.api.batching import chat_line, create_batch, jsonl, read_lines, upload, wait_for
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH


@pytest.fixture(autouse=True)
def fast_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_BATCHES__POLL_INTERVAL_S", "0.02")


def other_org_key(client: TestClient) -> dict[str, str]:
    org = client.post("/v1/admin/organizations", json={"name": "other"}).json()
    key = client.post("/v1/admin/keys", json={"org_id": org["id"]}).json()["key"]
    return {"Authorization": f"Bearer {key}"}


def test_chat_batch_runs_every_line_in_order(client: TestClient, backend: FakeBackend) -> None:
    data = jsonl([chat_line(f"req-{i}", f"question {i}", max_tokens=2) for i in range(5)])
    batch = create_batch(client, upload(client, data)["id"])
    assert batch["object"] == "batch"
    assert batch["status"] == "validating"
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    done = wait_for(client, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    assert done["error_file_id"] is None
    for moment in ("in_progress_at", "finalizing_at", "completed_at"):
        assert done[moment] is not None
    lines = read_lines(client, done["output_file_id"])
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(5)]
    first = lines[0]
    assert first["id"].startswith("batch_req_")
    assert first["error"] is None
    assert first["response"]["status_code"] == 200
    assert first["response"]["request_id"] == first["id"]
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "Hello there,"
    assert len(backend.requests) == 5
    output = client.get(f"/v1/files/{done['output_file_id']}").json()
    assert output["purpose"] == "batch_output"


def test_malformed_lines_go_to_the_error_file_and_the_rest_runs(client: TestClient) -> None:
    data = jsonl(
        [
            chat_line("good-1"),
            "{not json",
            {"method": "POST", "url": "/v1/chat/completions", "body": {}},
            {**chat_line("wrong-url"), "url": "/v1/embeddings"},
            chat_line("good-1"),  # duplicate custom_id
            chat_line("bad-model", model="nope"),
            chat_line("good-2"),
        ]
    )
    done = wait_for(client, create_batch(client, upload(client, data)["id"])["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 7, "completed": 2, "failed": 5}
    good = read_lines(client, done["output_file_id"])
    assert [line["custom_id"] for line in good] == ["good-1", "good-2"]
    errors = read_lines(client, done["error_file_id"])
    codes = [(line["error"] or {}).get("code") for line in errors]
    assert codes == [
        "invalid_json_line",
        "missing_custom_id",
        "invalid_url",
        "duplicate_custom_id",
        None,
    ]
    assert errors[0]["error"]["message"].startswith("Line 2:")
    unknown_model = errors[-1]
    assert unknown_model["custom_id"] == "bad-model"
    assert unknown_model["response"]["status_code"] == 404
    assert unknown_model["response"]["body"]["error"]["code"] == "model_not_found"


def test_embeddings_and_completions_batches(client: TestClient) -> None:
    embed = {"method": "POST", "url": "/v1/embeddings"}
    data = jsonl(
        [{**embed, "custom_id": "e", "body": {"model": "all-minilm-l6-v2", "input": "hi"}}]
    )
    done = wait_for(
        client, create_batch(client, upload(client, data)["id"], "/v1/embeddings")["id"]
    )
    (line,) = read_lines(client, done["output_file_id"])
    assert len(line["response"]["body"]["data"][0]["embedding"]) == 384
    legacy = {"method": "POST", "url": "/v1/completions"}
    data = jsonl([{**legacy, "custom_id": "c", "body": {"model": "tiny-chat", "prompt": "Once"}}])
    done = wait_for(
        client, create_batch(client, upload(client, data)["id"], "/v1/completions")["id"]
    )
    (line,) = read_lines(client, done["output_file_id"])
    assert line["response"]["body"]["object"] == "text_completion"


def test_stream_true_is_refused_per_line(client: TestClient) -> None:
    data = jsonl([chat_line("s", stream=True)])
    done = wait_for(client, create_batch(client, upload(client, data)["id"])["id"])
    (line,) = read_lines(client, done["error_file_id"])
    assert line["response"]["body"]["error"]["param"] == "stream"


def test_backend_failure_is_a_failed_line(client: TestClient, backend: FakeBackend) -> None:
    backend.fail_before_first = BackendUnavailableError("down")
    done = wait_for(
        client, create_batch(client, upload(client, jsonl([chat_line("x")]))["id"])["id"]
    )
    assert done["request_counts"]["failed"] == 1
    (line,) = read_lines(client, done["error_file_id"])
    assert line["response"]["status_code"] == 503


def test_empty_file_fails_the_batch(client: TestClient) -> None:
    done = wait_for(client, create_batch(client, upload(client, b"\n\n")["id"])["id"])
    assert done["status"] == "failed"
    assert done["errors"]["data"][0]["code"] == "empty_file"
    assert done["failed_at"] is not None


def test_create_validates_its_input(client: TestClient) -> None:
    file_id = upload(client, jsonl([chat_line("a")]))["id"]
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    assert client.post("/v1/batches", json={**body, "endpoint": "/v1/x"}).status_code == 400
    assert client.post("/v1/batches", json={**body, "completion_window": "1h"}).status_code == 400
    missing = client.post("/v1/batches", json={**body, "input_file_id": "file-nope"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "input_file_id"


def test_cancel_ends_as_cancelled_with_partial_results(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.chunk_delay_s = 0.05
    data = jsonl([chat_line(f"r{i}") for i in range(20)])
    batch = create_batch(client, upload(client, data)["id"])
    cancel = client.post(f"/v1/batches/{batch['id']}/cancel")
    assert cancel.status_code == 200
    assert cancel.json()["status"] in ("cancelling", "cancelled")
    done = wait_for(client, batch["id"])
    assert done["status"] == "cancelled"
    assert done["cancelled_at"] is not None
    assert done["request_counts"]["completed"] < 20
    again = client.post(f"/v1/batches/{batch['id']}/cancel")
    assert again.json()["status"] == "cancelled"


def test_list_is_paginated_newest_first(client: TestClient) -> None:
    file_id = upload(client, jsonl([chat_line("a")]))["id"]
    ids = [create_batch(client, file_id)["id"] for _ in range(3)]
    first = client.get("/v1/batches", params={"limit": 2}).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2]
    assert first["has_more"]
    rest = client.get("/v1/batches", params={"after": first["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]]


def test_other_organizations_see_nothing(client: TestClient) -> None:
    file_id = upload(client, jsonl([chat_line("a")]))["id"]
    batch_id = create_batch(client, file_id)["id"]
    other = other_org_key(client)
    assert client.get(f"/v1/batches/{batch_id}", headers=other).status_code == 404
    assert client.post(f"/v1/batches/{batch_id}/cancel", headers=other).status_code == 404
    assert client.get(f"/v1/files/{file_id}", headers=other).status_code == 404
    assert client.get(f"/v1/files/{file_id}/content", headers=other).status_code == 404
    assert client.get("/v1/batches", headers=other).json()["data"] == []
    borrowed = client.post(
        "/v1/batches",
        headers=other,
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert borrowed.status_code == 400


def test_usage_is_counted_against_the_creating_key(client: TestClient) -> None:
    data = jsonl([chat_line(f"u{i}") for i in range(3)])
    wait_for(client, create_batch(client, upload(client, data)["id"])["id"])
    app: Any = client.app
    client.portal.call(app.state.gateway.recorder.flush)  # type: ignore[union-attr]
    usage = client.get("/v1/usage", params={"group_by": "model"}).json()
    tiny = [row for row in usage["data"] if row.get("model") == "tiny-chat"]
    assert tiny and tiny[0]["requests"] >= 3
    assert tiny[0]["completion_tokens"] >= 18


def test_standalone_worker_setting_leaves_batches_alone(
    monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> None:
    monkeypatch.setenv("API_BATCHES__WORKER_IN_PROCESS", "false")
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        batch = create_batch(client, upload(client, jsonl([chat_line("a")]))["id"])
        for _ in range(5):
            assert client.get(f"/v1/batches/{batch['id']}").json()["status"] == "validating"
    assert backend.requests == []


def test_a_line_nested_past_the_serializer_limit_is_a_400_line(client: TestClient) -> None:
    """A body nested deeper than JSON re-serialization allows is validated as parsed: the
    schema's 400 naming the field, never a 500 line."""
    schema: dict[str, object] = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    data = jsonl([chat_line("deep", tools=[tool]), chat_line("fine")])
    done = wait_for(client, create_batch(client, upload(client, data)["id"])["id"])
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    (line,) = read_lines(client, done["error_file_id"])
    assert line["response"]["status_code"] == 400
    assert line["response"]["body"]["error"]["param"].startswith("tools")
