"""The gRPC API (api/grpc/) in front of the fake backend: each RPC, auth, limits, errors as
statuses with OpenAI details, usage records, cancellation, health and reflection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy import select
from starlette.testclient import TestClient

from api.app import create_app
from api.errors import APIError, BackendUnavailableError
from api.grpc import llm_service_pb2 as pb
from api.grpc import llm_service_pb2_grpc as pb_grpc
from api.grpc.payloads import chat_chunk, completion_chunk, to_message
from api.grpc.status import STATUS_CODES, grpc_code
from api.storage.tables import usage_records
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY, gateway_settings
from tests.api.test_usage import flush

CHAT = pb.ChatCompletionRequest(
    model="tiny-chat", messages=[pb.ChatMessage(role="user", content="Hi")], max_tokens=4
)
METADATA = (("authorization", f"Bearer {TEST_KEY}"),)


class Served:
    """An app whose lifespan runs (in TestClient's thread) and a channel to its gRPC port."""

    def __init__(self, client: TestClient, backend: FakeBackend) -> None:
        self.client, self.backend = client, backend
        port = client.app.state.grpc_api.port  # type: ignore[attr-defined]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.LLMServiceStub(self.channel)  # type: ignore[no-untyped-call]


def serve(tmp_path: Path, backend: FakeBackend, **overrides: Any) -> Iterator[Served]:
    settings = gateway_settings(tmp_path, grpc={"port": 0, "health_interval_s": 0.1}, **overrides)
    app = create_app(settings, backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        served = Served(client, backend)
        yield served
        served.channel.close()


@pytest.fixture
def api(tmp_path: Path, backend: FakeBackend) -> Iterator[Served]:
    yield from serve(tmp_path, backend)


def usage_rows(client: TestClient) -> list[dict[str, Any]]:
    """Every usage record written so far (the recorder flushed first)."""
    flush(client)

    async def read() -> list[dict[str, Any]]:
        engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            result = await conn.execute(select(usage_records))
            return [dict(row._mapping) for row in result]

    return client.portal.call(read)  # type: ignore[union-attr]


def failure(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return caught.value


def details(error: grpc.RpcError) -> dict[str, Any]:
    """The rich status's ErrorInfo metadata, BadRequest field and RetryInfo delay."""
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, Any] = {}
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    return found


def test_chat_streamed_equals_chat_collected(api: Served) -> None:
    whole = api.stub.ChatComplete(CHAT, metadata=METADATA)
    chunks = list(api.stub.StreamChatComplete(CHAT, metadata=METADATA))
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert whole.choices[0].message.content == text == "Hello there, how can"
    assert whole.object == "chat.completion" and chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    # The last message carries both the finish reason and the usage; no other has usage.
    last = chunks[-1]
    assert last.choices[0].finish_reason == whole.choices[0].finish_reason == "length"
    assert last.usage == whole.usage
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (7, 4)
    assert not any(chunk.HasField("usage") for chunk in chunks[:-1])


def test_completions_streamed_equal_collected(api: Served) -> None:
    request = pb.CompletionRequest(model="tiny-chat", prompt=["Say"], max_tokens=3, echo=True)
    whole = api.stub.Complete(request, metadata=METADATA)
    chunks = list(api.stub.StreamComplete(request, metadata=METADATA))
    assert whole.choices[0].text == "".join(c.choices[0].text for c in chunks if c.choices)
    assert whole.choices[0].text == "SayHello there, how"
    assert chunks[-1].usage == whole.usage and chunks[-1].choices[0].finish_reason == "length"


def test_several_prompts_and_token_prompts(api: Served) -> None:
    several = pb.CompletionRequest(model="tiny-chat", prompt=["a", "b"], max_tokens=1)
    assert [c.index for c in api.stub.Complete(several, metadata=METADATA).choices] == [0, 1]
    # Token ids reach the same rule as REST's: this deployment's model takes text only.
    tokens = pb.CompletionRequest(
        model="tiny-chat", prompt_tokens=[pb.TokenIds(ids=[1, 2, 3])], max_tokens=1
    )
    error = failure(api.stub.Complete, tokens, metadata=METADATA)
    rest = api.client.post(
        "/v1/completions", json={"model": "tiny-chat", "prompt": [1, 2, 3], "max_tokens": 1}
    ).json()["error"]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == rest["message"]
    assert details(error)["ErrorInfo"].metadata.get("param") == rest["param"]


def test_embeddings_in_floats_and_base64(api: Served) -> None:
    request = pb.EmbeddingRequest(model="all-minilm-l6-v2", input=["one two", "three"])
    reply = api.stub.GetEmbeddings(request, metadata=METADATA)
    assert [len(item.embedding) for item in reply.data] == [384, 384]
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (3, 3)
    request.encoding_format = "base64"
    encoded = api.stub.GetEmbeddings(request, metadata=METADATA)
    assert encoded.data[0].embedding_base64 and not encoded.data[0].embedding


def test_a_missing_or_wrong_key_is_unauthenticated(api: Served) -> None:
    assert failure(api.stub.ChatComplete, CHAT).code() == grpc.StatusCode.UNAUTHENTICATED
    wrong = (("authorization", "Bearer sk-wrong"),)
    error = failure(api.stub.StreamChatComplete, CHAT, metadata=wrong)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(error)["ErrorInfo"].metadata["code"] == "invalid_api_key"
    assert api.backend.requests == []


def test_an_invalid_parameter_names_it(api: Served) -> None:
    request = pb.ChatCompletionRequest()
    request.CopyFrom(CHAT)
    request.temperature = 3.0
    error = failure(api.stub.ChatComplete, request, metadata=METADATA)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "temperature" in (error.details() or "")
    found = details(error)
    assert found["ErrorInfo"].metadata["param"] == "temperature"
    assert found["ErrorInfo"].metadata["type"] == "invalid_request_error"
    assert found["BadRequest"].field_violations[0].field == "temperature"
    trailing = dict(error.trailing_metadata() or ())
    assert trailing["error-param"] == "temperature"
    assert trailing["error-code"] == "invalid_value"


def test_both_shapes_of_one_parameter_are_refused(api: Served) -> None:
    message = pb.ChatMessage(role="user", content="a")
    message.content_parts.add().update({"type": "text", "text": "b"})
    request = pb.ChatCompletionRequest(model="tiny-chat", messages=[message])
    error = failure(api.stub.ChatComplete, request, metadata=METADATA)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["ErrorInfo"].metadata["param"] == "messages[0].content"


def test_content_parts_are_the_message_text(api: Served) -> None:
    message = pb.ChatMessage(role="user")
    message.content_parts.add().update({"type": "text", "text": "Hi"})
    request = pb.ChatCompletionRequest(model="tiny-chat", messages=[message], max_tokens=1)
    assert api.stub.ChatComplete(request, metadata=METADATA).choices[0].message.content


def test_an_unknown_model_is_not_found(api: Served) -> None:
    request = pb.ChatCompletionRequest(model="nope", messages=[pb.ChatMessage(role="user")])
    error = failure(api.stub.ChatComplete, request, metadata=METADATA)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert details(error)["ErrorInfo"].metadata["code"] == "model_not_found"


def test_backend_trouble_is_unavailable(api: Served) -> None:
    api.backend.fail_before_first = BackendUnavailableError("Triton is down.")
    error = failure(api.stub.StreamChatComplete, CHAT, metadata=METADATA)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert details(error)["ErrorInfo"].metadata["code"] == "backend_unavailable"


def test_a_limit_is_resource_exhausted_with_retry_after(
    tmp_path: Path, backend: FakeBackend
) -> None:
    tight = {
        "limits": {"tiers": {"default": {}, "tight": {"requests_per_minute": 1}}},
        "auth": {"bootstrap_key": TEST_KEY, "bootstrap_tier": "tight"},
    }
    for api in serve(tmp_path, backend, **tight):
        _, call = api.stub.ChatComplete.with_call(CHAT, metadata=METADATA)
        assert dict(call.initial_metadata())["x-ratelimit-limit-requests"] == "1"
        error = failure(api.stub.ChatComplete, CHAT, metadata=METADATA)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(error.trailing_metadata() or ())
        assert int(trailing["retry-after"]) >= 1 and int(trailing["retry-after-ms"]) > 0
        assert details(error)["RetryInfo"].retry_delay.ToMilliseconds() > 0
        assert details(error)["ErrorInfo"].metadata["type"] == "rate_limit_exceeded"
    assert len(backend.requests) == 1


def test_each_call_leaves_the_usage_record_of_its_rest_twin(api: Served) -> None:
    api.stub.ChatComplete(CHAT, metadata=METADATA)
    list(api.stub.StreamChatComplete(CHAT, metadata=METADATA))
    rest = api.client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny-chat",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
        },
    )
    assert rest.status_code == 200
    rows = {row["endpoint"]: row for row in usage_rows(api.client)}
    counted = ("model", "key_id", "org_id", "status", "prompt_tokens", "completion_tokens")
    rest_row = rows["/v1/chat/completions"]
    for method in ("ChatComplete", "StreamChatComplete"):
        row = rows[f"/llm.v1.LLMService/{method}"]
        assert [row[name] for name in counted] == [rest_row[name] for name in counted]
    assert rest_row["status"] == 200 and rest_row["completion_tokens"] == 4


def test_a_cancelled_stream_closes_the_backend_stream(api: Served) -> None:
    # Left alone, the reply would take 4 s: the stream must close well before that.
    api.backend.chunk_delay_s = 1.0
    stream = api.stub.StreamChatComplete(CHAT, metadata=METADATA)
    next(stream)  # the role chunk: the backend stream is open
    stream.cancel()
    closed = threading.Event()
    for _ in range(30):
        if api.backend.closed_streams == 1:
            closed.set()
            break
        threading.Event().wait(0.05)
    assert closed.is_set(), "the backend stream outlived the cancelled call"
    (row,) = usage_rows(api.client)
    assert (row["endpoint"], row["status"]) == ("/llm.v1.LLMService/StreamChatComplete", 499)


def test_health_per_model_and_reflection(api: Served) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "llm.v1.LLMService", "tiny-chat", "all-minilm-l6-v2"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="no-such-model"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    api.backend.ready = False
    for _ in range(50):
        status = health.Check(health_pb2.HealthCheckRequest(service="tiny-chat")).status
        if status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        threading.Event().wait(0.05)
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    answers = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {service.name for service in next(answers).list_services_response.service}
    assert {"llm.v1.LLMService", "grpc.health.v1.Health"} <= names


def _subclasses(kind: type[APIError]) -> list[type[APIError]]:
    return [kind, *(sub for child in kind.__subclasses__() for sub in _subclasses(child))]


def test_every_api_error_has_its_own_grpc_code() -> None:
    # Import every module that defines an APIError subclass, so none is missed.
    import api.backend.errors
    import api.http.edge
    import api.limits.headers  # noqa: F401

    for kind in _subclasses(APIError):
        assert kind.status_code in STATUS_CODES, f"{kind.__name__} ({kind.status_code})"
    assert grpc_code(418) == grpc.StatusCode.FAILED_PRECONDITION
    assert grpc_code(507) == grpc.StatusCode.INTERNAL
    assert len(set(STATUS_CODES.values())) >= 10


@pytest.mark.parametrize(
    "chunk",
    [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 1, "delta": {"content": "é"}, "logprobs": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": []}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1"}]}}]},
    ],
)
def test_streamed_chunks_convert_as_parse_dict_does(chunk: dict[str, Any]) -> None:
    envelope = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    payload = json.dumps({**envelope, **chunk}).encode()
    assert chat_chunk(payload) == to_message(payload, pb.ChatCompletionChunk)
    legacy = [{"text": c["delta"].get("content") or "", **c} for c in chunk["choices"]]
    legacy = [{k: v for k, v in c.items() if k != "delta"} for c in legacy]
    payload = json.dumps({**envelope, **chunk, "choices": legacy}).encode()
    assert completion_chunk(payload) == to_message(payload, pb.Completion)
