"""The Triton boundary: tensors, final-response detection, error mapping."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from api.backend.ensemble import build_generation_request, parse_generation_response
from api.backend.errors import error_for_message, error_for_status
from api.backend.tensors import add_input, decode_bytes, encode, first_int
from api.backend.types import GenerationRequest, SamplingParams
from api.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ContextLengthExceededError,
    InvalidRequestError,
    RateLimitError,
)


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
def test_every_grpc_status_is_mapped(code: grpc.StatusCode) -> None:
    error = error_for_status(code, "details")
    assert 400 <= error.status_code < 600


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        (grpc.StatusCode.UNAVAILABLE, BackendUnavailableError, 503),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, RateLimitError, 429),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidRequestError, 400),
        (grpc.StatusCode.DEADLINE_EXCEEDED, BackendTimeoutError, 504),
        (grpc.StatusCode.INTERNAL, BackendError, 500),
    ],
)
def test_status_mapping(code: grpc.StatusCode, expected: type, status: int) -> None:
    error = error_for_status(code, "x")
    assert isinstance(error, expected)
    assert error.status_code == status


def test_context_length_message_is_recognised() -> None:
    error = error_for_message(
        "in ensemble 'ensemble', context_length_exceeded: "
        "This model's maximum context length is 1024 tokens."
    )
    assert isinstance(error, ContextLengthExceededError)
    assert error.message.startswith("This model's maximum context length")


def test_bytes_roundtrip() -> None:
    assert decode_bytes(encode("BYTES", ["a", "", "héllo"])) == [b"a", b"", "héllo".encode()]


def test_generation_request_tensors() -> None:
    request = GenerationRequest(
        request_id="r1",
        triton_model="ensemble",
        params=SamplingParams(max_tokens=5, temperature=0.0, stop=("\n",), seed=-1),
        messages_json='[{"role":"user","content":"hi"}]',
    )
    message = build_generation_request(request)
    names = [tensor.name for tensor in message.inputs]
    assert "messages" in names and "text_input" not in names
    assert message.parameters["triton_enable_empty_final_response"].bool_param
    seed_index = names.index("seed")
    assert np.frombuffer(message.raw_input_contents[seed_index], dtype=np.uint64)[0] == 2**64 - 1
    assert list(message.inputs[names.index("stop_words")].shape) == [1, 1]


@pytest.mark.parametrize(
    ("logprobs", "top", "extra"),
    [
        (False, 0, []),
        (True, 0, ["output_tokens", "output_token_logprobs"]),
        (
            True,
            3,
            ["output_tokens", "output_token_logprobs", "top_logprob_tokens", "top_logprob_values"],
        ),
    ],
)
def test_only_the_outputs_a_reply_needs_are_requested(
    logprobs: bool, top: int, extra: list[str]
) -> None:
    params = SamplingParams(max_tokens=5, return_log_probs=logprobs, top_logprobs=top)
    request = GenerationRequest(request_id="r", triton_model="ensemble", params=params, prompt="x")
    names = [output.name for output in build_generation_request(request).outputs]
    assert names == ["text_output", "num_input_tokens", "num_output_tokens", *extra]


def test_partial_and_final_responses() -> None:
    response = service_pb2.ModelInferResponse()
    output = response.outputs.add()
    output.name, output.datatype = "num_input_tokens", "INT32"
    output.shape.extend([1, 1])
    response.raw_output_contents.append(np.array([12], dtype=np.int32).tobytes())
    chunk = parse_generation_response(response)
    assert (chunk.prompt_tokens, chunk.text, chunk.final) == (12, "", False)
    final = service_pb2.ModelInferResponse()
    final.parameters["triton_final_response"].bool_param = True
    assert parse_generation_response(final).final


def test_a_token_response_is_parsed_whole() -> None:
    response = service_pb2.ModelInferResponse()
    for name, datatype, values in [
        ("text_output", "BYTES", ["Pa", "ris"]),
        ("num_input_tokens", "INT32", [15]),
        ("num_output_tokens", "INT32", [2]),
    ]:
        output = response.outputs.add()
        output.name, output.datatype = name, datatype
        output.shape.extend([1, len(values)])
        response.raw_output_contents.append(encode(datatype, values))
    chunk = parse_generation_response(response)
    assert (chunk.text, chunk.prompt_tokens, chunk.completion_tokens) == ("Paris", 15, 2)
    assert chunk.logprobs == []


def test_first_int_reads_counts_of_every_integer_type() -> None:
    assert first_int("INT32", encode("INT32", [-3, 9])) == -3
    assert first_int("INT64", encode("INT64", [2**40])) == 2**40
    assert first_int("UINT64", encode("UINT64", [2**64 - 1])) == 2**64 - 1
    assert first_int("INT32", b"") is None
    with pytest.raises(ValueError, match="FP32"):
        first_int("FP32", encode("FP32", [1.0]))


def test_add_input_default_shape() -> None:
    message = service_pb2.ModelInferRequest()
    add_input(message, "x", "FP32", [1.0, 2.0])
    assert list(message.inputs[0].shape) == [1, 2]
