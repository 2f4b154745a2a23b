"""The gRPC API (llm.v1.LLMService) against the real Triton stack: every RPC, streamed equal
to collected at temperature 0 and equal to REST, the errors as gRPC statuses, a client's cancel
stopping the engine, and usage records equal to REST's.

An API of this module's own (gRPC on, a tight tier) serves in front of the session's Triton.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from api.grpc import llm_service_pb2 as pb
from api.grpc import llm_service_pb2_grpc as pb_grpc
from tests.e2e.conftest import Stack, free_port
from tests.e2e.harness import LONG_REPLY, Api, wait_for

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

PROMPT = "Say hello in one short sentence."
TIERS = {"default": {}, "unlimited": {}, "tight": {"requests_per_minute": 1}}


def chat(prompt: str = PROMPT, max_tokens: int = 24, **options: Any) -> pb.ChatCompletionRequest:
    return pb.ChatCompletionRequest(
        model="tiny-chat",
        messages=[pb.ChatMessage(role="user", content=prompt)],
        max_tokens=max_tokens,
        temperature=0.0,
        **options,
    )


class GrpcApi:
    def __init__(self, api: Api, port: int) -> None:
        self.api = api
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.LLMServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.metadata = (("authorization", f"Bearer {api.key}"),)

    def usage_rows(self, endpoint: str, count: int) -> list[dict[str, Any]]:
        """The usage records of ``endpoint`` once ``count`` are written (flushed each second)."""
        database = Path(self.api.env["API_DATABASE__URL"].removeprefix("sqlite+aiosqlite:///"))
        rows: list[dict[str, Any]] = []

        def written() -> bool:
            nonlocal rows
            with sqlite3.connect(database) as conn:
                conn.row_factory = sqlite3.Row
                query = "SELECT * FROM usage_records WHERE endpoint = ? ORDER BY created_at"
                rows = [dict(row) for row in conn.execute(query, (endpoint,))]
            return len(rows) >= count

        wait_for(written, timeout_s=30)
        return rows


@pytest.fixture(scope="module")
def rpc(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcApi]:
    logs = tmp_path_factory.mktemp("grpc-logs")
    port = free_port()
    settings = {
        "API_GRPC__PORT": str(port),
        "API_LIMITS__TIERS": json.dumps(TIERS),
        "API_LIMITS__IP_REQUESTS_PER_MINUTE": "10000000",
    }
    with Api(logs, "grpc", stack.triton_grpc, **settings) as api:
        served = GrpcApi(api, port)
        grpc.channel_ready_future(served.channel).result(timeout=60)
        yield served
        served.channel.close()


def rest(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, body, timeout=120)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def test_chat_streamed_equals_collected_and_rest(rpc: GrpcApi) -> None:
    whole = rpc.stub.ChatComplete(chat(), metadata=rpc.metadata, timeout=120)
    chunks = list(rpc.stub.StreamChatComplete(chat(), metadata=rpc.metadata, timeout=120))
    streamed = "".join(chunk.choices[0].delta.content for chunk in chunks if chunk.choices)
    text = whole.choices[0].message.content
    assert text and streamed == text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage == whole.usage and whole.usage.completion_tokens > 0
    body = {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 24,
        "temperature": 0,
    }
    reply = rest(rpc.api, "/v1/chat/completions", body)
    assert reply["choices"][0]["message"]["content"] == text
    assert reply["usage"]["completion_tokens"] == whole.usage.completion_tokens


def test_completion_streamed_equals_collected(rpc: GrpcApi) -> None:
    request = pb.CompletionRequest(
        model="tiny-chat", prompt=["Once upon a time"], max_tokens=16, temperature=0.0
    )
    whole = rpc.stub.Complete(request, metadata=rpc.metadata, timeout=120)
    chunks = list(rpc.stub.StreamComplete(request, metadata=rpc.metadata, timeout=120))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage == whole.usage
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_embeddings_equal_rest(rpc: GrpcApi) -> None:
    request = pb.EmbeddingRequest(model="all-minilm-l6-v2", input=["gRPC e2e", "second"])
    reply = rpc.stub.GetEmbeddings(request, metadata=rpc.metadata, timeout=120)
    body = {"model": "all-minilm-l6-v2", "input": ["gRPC e2e", "second"]}
    expected = rest(rpc.api, "/v1/embeddings", body)
    assert [len(item.embedding) for item in reply.data] == [384, 384]
    for got, want in zip(reply.data, expected["data"], strict=True):
        assert list(got.embedding) == pytest.approx(want["embedding"], abs=1e-6)
    assert reply.usage.prompt_tokens == expected["usage"]["prompt_tokens"]


def test_a_bad_key_is_unauthenticated(rpc: GrpcApi) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        rpc.stub.ChatComplete(chat(), metadata=(("authorization", "Bearer sk-bad"),))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_bad_parameter_is_invalid_argument_with_its_name(rpc: GrpcApi) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(rpc.stub.StreamChatComplete(chat(top_p=0.0), metadata=rpc.metadata))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata() or ())["error-param"] == "top_p"
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.metadata["param"] == "top_p"


def test_a_limit_is_resource_exhausted(rpc: GrpcApi) -> None:
    with httpx.Client(base_url=rpc.api.url, headers=rpc.api.headers, timeout=30) as admin:
        org = admin.post("/v1/admin/organizations", json={"name": "grpc-tight"}).json()
        key = admin.post("/v1/admin/keys", json={"org_id": org["id"], "tier": "tight"}).json()
    metadata = (("authorization", f"Bearer {key['key']}"),)
    rpc.stub.ChatComplete(chat(max_tokens=1), metadata=metadata, timeout=120)
    with pytest.raises(grpc.RpcError) as caught:
        rpc.stub.ChatComplete(chat(max_tokens=1), metadata=metadata, timeout=120)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert int(dict(caught.value.trailing_metadata() or ())["retry-after"]) >= 1


def generated_tokens(stack: Stack) -> int:
    """Tokens the engine produced: postprocessing runs once per streamed token."""
    text = httpx.get(stack.triton_metrics, timeout=5).text
    found = re.search(r'nv_inference_count\{model="postprocessing",version="1"\} (\S+)', text)
    return int(float(found.group(1))) if found else 0


def settled_tokens(stack: Stack, quiet_s: float = 1.5) -> int:
    last = generated_tokens(stack)
    for _ in range(20):
        time.sleep(quiet_s)
        if (now := generated_tokens(stack)) == last:
            return now
        last = now
    raise AssertionError("the engine was still generating")


def test_a_cancelled_stream_stops_the_engine(rpc: GrpcApi, stack: Stack) -> None:
    prompt = LONG_REPLY["messages"][0]["content"]  # type: ignore[index]
    request = chat(prompt, max_tokens=990, min_tokens=990)
    endpoint = "/llm.v1.LLMService/StreamChatComplete"
    recorded = len(rpc.usage_rows(endpoint, 0))
    before = settled_tokens(stack)
    stream = rpc.stub.StreamChatComplete(request, metadata=rpc.metadata, timeout=120)
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 5:
            stream.cancel()
            break
    generated = settled_tokens(stack) - before
    logger.info("gRPC cancel after %d tokens: the engine generated %d in all", received, generated)
    assert generated < 990 // 2
    assert rpc.usage_rows(endpoint, recorded + 1)[-1]["status"] == 499


def test_usage_records_equal_rest(rpc: GrpcApi) -> None:
    endpoints = ("/llm.v1.LLMService/ChatComplete", "/v1/chat/completions")
    recorded = [len(rpc.usage_rows(endpoint, 0)) for endpoint in endpoints]
    request = chat("Write a haiku about AI.")
    rpc.stub.ChatComplete(request, metadata=rpc.metadata, timeout=120)
    body = {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": "Write a haiku about AI."}],
        "max_tokens": 24,
        "temperature": 0,
    }
    rest(rpc.api, "/v1/chat/completions", body)
    grpc_row, rest_row = (
        rpc.usage_rows(endpoint, count + 1)[-1]
        for endpoint, count in zip(endpoints, recorded, strict=True)
    )
    fields = ("key_id", "org_id", "model", "status", "prompt_tokens", "completion_tokens")
    assert [grpc_row[f] for f in fields] == [rest_row[f] for f in fields]
    assert grpc_row["cost_nanos"] == rest_row["cost_nanos"]
