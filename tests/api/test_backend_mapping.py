"""The Triton boundary: tensors, final-response detection, error mapping."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from api.backend.breaker import counts_as_failure
from api.backend.ensemble import (
    HeldBackTail,
    build_generation_request,
    parse_generation_response,
)
from api.backend.errors import error_for_message, error_for_status
from api.backend.tensors import add_input, decode_bytes, encode, first_int
from api.backend.types import GenerationChunk, GenerationRequest, SamplingParams
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
    base = ["text_output", "text_pending", "num_input_tokens", "num_output_tokens"]
    assert names == [*base, *extra]


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


def test_every_request_streams_from_triton() -> None:
    # A non-streamed reply is the streamed one collected: the same tokens, stops and counts.
    params = SamplingParams(max_tokens=5)
    request = GenerationRequest(request_id="r", triton_model="ensemble", params=params, prompt="x")
    message = build_generation_request(request)
    names = [tensor.name for tensor in message.inputs]
    raw = message.raw_input_contents[names.index("stream")]
    assert np.frombuffer(raw, dtype=np.bool_).tolist() == [True]
    assert "fit_max_tokens" not in names


def test_a_default_max_tokens_asks_the_engine_to_fit_the_context() -> None:
    params = SamplingParams(max_tokens=256, fit_context=1024)
    request = GenerationRequest(request_id="r", triton_model="ensemble", params=params, prompt="x")
    names = [tensor.name for tensor in build_generation_request(request).inputs]
    assert "fit_max_tokens" in names


def _chunk(text: str | None, pending: str | None, final: bool = False) -> GenerationChunk:
    return GenerationChunk(text=text or "", pending=pending, final=final)


def test_the_held_back_tail_ends_the_final_chunk() -> None:
    tail = HeldBackTail()
    assert tail.settle(_chunk("Trito", "")).text == "Trito"
    assert tail.settle(_chunk("", "\ufffd")).text == ""
    # The empty final response carries no outputs: the last tail seen is appended.
    assert tail.settle(_chunk(None, None, final=True)).text == "\ufffd"


def test_a_completed_character_clears_the_tail() -> None:
    tail = HeldBackTail()
    tail.settle(_chunk("", "\ufffd"))
    assert tail.settle(_chunk("á", "")).text == "á"
    assert tail.settle(_chunk(None, None, final=True)).text == ""


def test_a_final_chunk_with_its_own_tail_uses_it() -> None:
    tail = HeldBackTail()
    tail.settle(_chunk("", "\ufffd"))
    assert tail.settle(_chunk("", "\ufffd\ufffd", final=True)).text == "\ufffd\ufffd"


def test_pending_text_is_parsed() -> None:
    response = service_pb2.ModelInferResponse()
    output = response.outputs.add()
    output.name, output.datatype = "text_pending", "BYTES"
    output.shape.extend([1, 1])
    response.raw_output_contents.append(encode("BYTES", ["\ufffd"]))
    assert parse_generation_response(response).pending == "\ufffd"


@pytest.mark.parametrize(
    ("where", "param"), [("in the prompt", "prompt"), ("in the messages", "messages")]
)
def test_context_errors_name_the_field_the_client_sent(where: str, param: str) -> None:
    error = error_for_message(
        "context_length_exceeded: This model's maximum context length is 64 tokens. However, "
        f"you requested 70 tokens (60 {where}, 10 in the completion)."
    )
    assert isinstance(error, ContextLengthExceededError)
    assert error.param == param


@pytest.mark.parametrize(
    "message",
    [
        "in ensemble 'ensemble', invalid_request: exactly one of text_input and messages",
        "[request id: 1] unexpected shape for input 'max_tokens' for model 'ensemble'",
        "unexpected datatype TYPE_INT64 for inference input 'max_tokens', expecting TYPE_INT32",
        "unexpected inference input 'bogus' for model 'ensemble'",
        "expected 1 inputs but got 3 inputs for model 'preprocessing'",
    ],
)
def test_input_errors_from_inside_triton_are_the_clients(message: str) -> None:
    error = error_for_message(message)
    assert error.status_code == 400
    assert not counts_as_failure(error)


def test_an_unknown_failure_is_the_backends() -> None:
    error = error_for_message("Stub process 'tensorrt_llm_0_0' is not healthy.")
    assert error.status_code == 503
    assert counts_as_failure(error_for_message("CUDA error: an illegal memory access"))
