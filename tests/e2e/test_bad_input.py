"""Bad input never takes a model down: against the real Triton stack.

- Malformed and out-of-range tensors sent straight to every model over gRPC each get an error
  response; no model crashes (each stays ready and serves the next good request), and the
  API maps every one of those errors to a 4xx.
- A burst of bad requests of every kind through the API is answered with 4xx, and a good
  request from another key succeeds right after: client errors never open a breaker.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.errors import error_for_message
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

Tensor = tuple[str, str, Any]
MESSAGES = json.dumps([{"role": "user", "content": "Hello!"}])
INT32_MAX = 2**31 - 1


def _add(message: service_pb2.ModelInferRequest, name: str, datatype: str, value: Any) -> None:
    """An input of any shape, the raw bytes as Triton expects them (BYTES length-prefixed)."""
    if datatype == "BYTES":
        items = [v if isinstance(v, bytes) else str(v).encode() for v in np.ravel(value)]
        shape = list(np.shape(value)) or [1]
        message.inputs.add(name=name, datatype=datatype, shape=[1, *shape])
        message.raw_input_contents.append(
            b"".join(len(item).to_bytes(4, "little") + item for item in items)
        )
        return
    limits = {
        "INT32": (-(2**31), 2**31 - 1),
        "INT64": (-(2**63), 2**63 - 1),
        "UINT64": (0, 2**64 - 1),
    }
    if datatype in limits:
        low, high = limits[datatype]
        value = [min(max(int(v), low), high) for v in np.ravel(value)]
    dtypes = {
        "INT32": np.int32,
        "INT64": np.int64,
        "FP32": np.float32,
        "BOOL": np.bool_,
        "UINT64": np.uint64,
    }
    with np.errstate(over="ignore"):
        array = np.asarray(value, dtype=dtypes[datatype])
    shape = list(array.shape) or [1]
    message.inputs.add(name=name, datatype=datatype, shape=[1, *shape])
    message.raw_input_contents.append(array.tobytes())


def send(stack: Stack, model: str, tensors: list[Tensor], timeout_s: float = 60) -> list[str]:
    """Stream one request; the error messages it got (empty when it succeeded)."""
    message = service_pb2.ModelInferRequest(model_name=model, id=f"fuzz-{secrets.token_hex(8)}")
    message.parameters["triton_enable_empty_final_response"].bool_param = True
    for name, datatype, value in tensors:
        _add(message, name, datatype, value)
    done = threading.Event()

    def requests() -> Iterator[service_pb2.ModelInferRequest]:
        yield message
        done.wait(timeout_s)

    errors = []
    try:
        with grpc.insecure_channel(stack.triton_grpc) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            for response in stub.ModelStreamInfer(requests(), timeout=timeout_s):
                if response.error_message:
                    errors.append(response.error_message)
                    break
                final = response.infer_response.parameters.get("triton_final_response")
                if final is not None and final.bool_param:
                    break
    except grpc.RpcError as exc:
        errors.append(f"{exc.code()}: {exc.details()}")
    finally:
        done.set()
    return errors


def ready(stack: Stack, model: str) -> bool:
    with grpc.insecure_channel(stack.triton_grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        return bool(stub.ModelReady(service_pb2.ModelReadyRequest(name=model), timeout=10).ready)


GOOD_ENSEMBLE: list[Tensor] = [
    ("messages", "BYTES", [MESSAGES]),
    ("max_tokens", "INT32", [4]),
    ("stream", "BOOL", [True]),
]
GOOD_LLM: list[Tensor] = [
    ("input_ids", "INT32", [5, 6, 7]),
    ("input_lengths", "INT32", [3]),
    ("request_output_len", "INT32", [3]),
    ("streaming", "BOOL", [True]),
]


def _replace(base: list[Tensor], **changes: Tensor | None) -> list[Tensor]:
    kept = [tensor for tensor in base if tensor[0] not in changes]
    return kept + [tensor for tensor in changes.values() if tensor is not None]


# Each case: (model, tensors) that must come back as an error the API reads as a 4xx.
CASES: dict[str, tuple[str, list[Tensor]]] = {
    "ensemble max_tokens int32 max": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, max_tokens=("max_tokens", "INT32", [INT32_MAX])),
    ),
    "ensemble max_tokens negative": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, max_tokens=("max_tokens", "INT32", [-5])),
    ),
    "ensemble max_tokens as int64": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, max_tokens=("max_tokens", "INT64", [4])),
    ),
    "ensemble max_tokens two values": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, max_tokens=("max_tokens", "INT32", [4, 4])),
    ),
    "ensemble messages not JSON": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, messages=("messages", "BYTES", ["{not json"])),
    ),
    "ensemble messages not UTF-8": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, messages=("messages", "BYTES", [b"\xff\xfe\x00"])),
    ),
    "ensemble messages wrong shape": (
        "ensemble",
        _replace(GOOD_ENSEMBLE, messages=("messages", "BYTES", [{"role": 1}])),
    ),
    "ensemble text and messages": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("text_input", "BYTES", ["hi"])],
    ),
    "ensemble no prompt": ("ensemble", _replace(GOOD_ENSEMBLE, messages=None)),
    "ensemble tools not a list": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("tools", "BYTES", ['{"type": 3}'])],
    ),
    "ensemble logit bias id out of vocabulary": (
        "ensemble",
        [
            *GOOD_ENSEMBLE,
            ("logit_bias_ids", "INT32", [INT32_MAX]),
            ("logit_bias_weights", "FP32", [1.0]),
        ],
    ),
    "ensemble logit bias negative id": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("logit_bias_ids", "INT32", [-3]), ("logit_bias_weights", "FP32", [1.0])],
    ),
    "ensemble logit bias lists differ": (
        "ensemble",
        [
            *GOOD_ENSEMBLE,
            ("logit_bias_ids", "INT32", [1, 2]),
            ("logit_bias_weights", "FP32", [1.0]),
        ],
    ),
    "ensemble unknown guide type": (
        "ensemble",
        [
            *GOOD_ENSEMBLE,
            ("guided_decoding_guide_type", "BYTES", ["bogus"]),
            ("guided_decoding_guide", "BYTES", ["x"]),
        ],
    ),
    "ensemble guide that does not compile": (
        "ensemble",
        [
            *GOOD_ENSEMBLE,
            ("guided_decoding_guide_type", "BYTES", ["json_schema"]),
            ("guided_decoding_guide", "BYTES", ["{"]),
        ],
    ),
    "ensemble unknown input": ("ensemble", [*GOOD_ENSEMBLE, ("bogus", "INT32", [1])]),
    "ensemble temperature NaN": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("temperature", "FP32", [float("nan")])],
    ),
    "ensemble top_p negative": ("ensemble", [*GOOD_ENSEMBLE, ("top_p", "FP32", [-1.0])]),
    "ensemble top_k negative": ("ensemble", [*GOOD_ENSEMBLE, ("top_k", "INT32", [-(2**31)])]),
    "ensemble penalty infinite": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("repetition_penalty", "FP32", [float("inf")])],
    ),
    "ensemble min_tokens negative": (
        "ensemble",
        [*GOOD_ENSEMBLE, ("min_tokens", "INT32", [-1])],
    ),
    "llm input ids out of vocabulary": (
        "tensorrt_llm",
        _replace(GOOD_LLM, input_ids=("input_ids", "INT32", [5, INT32_MAX])),
    ),
    "llm negative input ids": (
        "tensorrt_llm",
        _replace(GOOD_LLM, input_ids=("input_ids", "INT32", [-1, 5])),
    ),
    "llm lengths past the ids": (
        "tensorrt_llm",
        _replace(GOOD_LLM, input_lengths=("input_lengths", "INT32", [99])),
    ),
    "llm output length int32 max": (
        "tensorrt_llm",
        _replace(GOOD_LLM, request_output_len=("request_output_len", "INT32", [INT32_MAX])),
    ),
    "llm output length zero": (
        "tensorrt_llm",
        _replace(GOOD_LLM, request_output_len=("request_output_len", "INT32", [0])),
    ),
    "llm stop words out of vocabulary": (
        "tensorrt_llm",
        [*GOOD_LLM, ("stop_words_list", "INT32", [[INT32_MAX], [1]])],
    ),
    "llm bad word offsets": (
        "tensorrt_llm",
        [*GOOD_LLM, ("bad_words_list", "INT32", [[5, 6], [9, -1]])],
    ),
    "llm embedding bias too wide": (
        "tensorrt_llm",
        [*GOOD_LLM, ("embedding_bias", "FP32", [1.0] * 100_000)],
    ),
    "llm beam width": ("tensorrt_llm", [*GOOD_LLM, ("beam_width", "INT32", [4])]),
    "llm temperature infinite": (
        "tensorrt_llm",
        [*GOOD_LLM, ("temperature", "FP32", [float("inf")])],
    ),
    "postprocessing ids out of vocabulary": (
        "postprocessing",
        [("TOKENS_BATCH", "INT32", [[INT32_MAX]]), ("SEQUENCE_LENGTH", "INT32", [1])],
    ),
    "postprocessing negative ids": (
        "postprocessing",
        [("TOKENS_BATCH", "INT32", [[-7, 3]]), ("SEQUENCE_LENGTH", "INT32", [2])],
    ),
    "postprocessing length past the tokens": (
        "postprocessing",
        [("TOKENS_BATCH", "INT32", [[3]]), ("SEQUENCE_LENGTH", "INT32", [5])],
    ),
    "preprocessing no output length": (
        "preprocessing",
        [("QUERY", "BYTES", ["hello"])],
    ),
    "preprocessing output length negative": (
        "preprocessing",
        [("QUERY", "BYTES", ["hello"]), ("REQUEST_OUTPUT_LEN", "INT32", [-1])],
    ),
    "embedding token ids out of vocabulary": (
        "embedding",
        [("input_ids", "INT32", [[INT32_MAX]])],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_tensors_get_an_error_the_api_reads_as_a_4xx(stack: Stack, case: str) -> None:
    model, tensors = CASES[case]
    errors = send(stack, model, tensors)
    assert errors, f"{case}: accepted"
    error = error_for_message(errors[0])
    assert 400 <= error.status_code < 500, (case, errors[0], error.message)
    assert ready(stack, model), f"{case}: {model} is no longer ready"


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(
        [
            "max_tokens",
            "top_k",
            "min_tokens",
            "seed",
            "temperature",
            "top_p",
            "end_id",
            "pad_id",
            "logit_bias_ids",
            "stop_words",
            "messages",
        ]
    ),
    datatype=st.sampled_from(["INT32", "INT64", "FP32", "BYTES", "BOOL"]),
    values=st.lists(
        st.one_of(st.integers(-(2**31), 2**31 - 1), st.floats(allow_nan=True), st.text(max_size=8)),
        min_size=0,
        max_size=3,
    ),
)
def test_random_tensors_never_crash_the_ensemble(
    stack: Stack, name: str, datatype: str, values: list[Any]
) -> None:
    tensor = (name, datatype, _coerce(values, datatype))
    errors = send(stack, "ensemble", _replace(GOOD_ENSEMBLE, **{name: tensor}))
    if errors:
        assert error_for_message(errors[0]).status_code < 500, errors[0]
    assert ready(stack, "ensemble")


def _coerce(values: list[Any], datatype: str) -> Any:
    if datatype == "BYTES":
        return [str(value) for value in values] or [""]
    if datatype == "BOOL":
        return [bool(value) for value in values]
    if datatype == "FP32":
        return [float(v) if not isinstance(v, str) else float(len(v)) for v in values]
    # Integers (NaN and infinities become 0; the range is clipped by _add).
    return [
        int(v) if isinstance(v, int) or math.isfinite(v) else 0
        for v in values
        if not isinstance(v, str)
    ] or [0]


def test_the_models_serve_after_the_fuzzing(stack: Stack) -> None:
    assert send(stack, "ensemble", GOOD_ENSEMBLE) == []
    assert send(stack, "tensorrt_llm", GOOD_LLM) == []


# Requests a client may send that are its own mistake: each a 4xx, none counted by a breaker.
BAD_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2**31},
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2**40},
    ),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "top_k": 2**33}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "seed": -1}),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"99999999": 5}},
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"-1": 5}},
    ),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x " * 5000}]}),
    (
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "bogus"}},
            },
        },
    ),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5000}),
    ("/v1/completions", {"prompt": "x " * 5000, "max_tokens": 4}),
    ("/v1/completions", {"prompt": [[2**40]], "max_tokens": 4}),
    ("/v1/completions", {"prompt": ["a"] * 200, "max_tokens": 4}),
    ("/v1/embeddings", {"input": [[2**31 - 1]]}),
    ("/v1/embeddings", {"input": "word " * 2000}),
]


def _with_model(path: str, body: dict[str, Any]) -> dict[str, Any]:
    model = "all-minilm-l6-v2" if path == "/v1/embeddings" else "tiny-chat"
    return {"model": model, **body}


def test_a_burst_of_bad_requests_opens_no_breaker(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, timeout=120) as http:
        org = http.post(
            "/v1/admin/organizations",
            json={"name": f"bystander-{secrets.token_hex(4)}"},
            headers=admin,
        )
        assert org.status_code == 201, org.text
        created = http.post("/v1/admin/keys", json={"org_id": org.json()["id"]}, headers=admin)
        assert created.status_code == 201, created.text
        other = {"Authorization": f"Bearer {created.json()['key']}"}
        for _ in range(3):  # well past the breakers' threshold of 5 failures in a row
            for path, body in BAD_REQUESTS:
                response = http.post(path, json=_with_model(path, body), headers=admin)
                assert 400 <= response.status_code < 500, (path, body, response.text)
                assert response.headers.get("x-request-id"), path
                error = response.json()["error"]
                assert error["message"] and error["type"], error
        good = http.post(
            "/v1/chat/completions",
            json={
                "model": "tiny-chat",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "Hello!"}],
            },
            headers=other,
        )
        assert good.status_code == 200, good.text
        health = http.get("/health/ready")
        assert health.status_code == 200, health.text
