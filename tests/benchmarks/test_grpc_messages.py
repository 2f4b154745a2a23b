"""The request of benchmarks/grpc_messages.py: the API's own message, only ``stream`` differs."""

from __future__ import annotations

import pytest
from tritonclient.grpc import service_pb2

from api.backend.ensemble import build_generation_request
from api.backend.types import GenerationRequest, SamplingParams
from benchmarks.grpc_messages import MESSAGES, request_message


def inputs(message: service_pb2.ModelInferRequest) -> dict[str, bytes]:
    names = [tensor.name for tensor in message.inputs]
    return dict(zip(names, message.raw_input_contents, strict=True))


@pytest.mark.parametrize("stream", [True, False])
def test_only_the_stream_input_differs_from_the_apis_message(stream: bool) -> None:
    api_message = build_generation_request(
        GenerationRequest(
            request_id="r",
            triton_model="ensemble",
            params=SamplingParams(max_tokens=40),
            messages_json=MESSAGES,
        )
    )
    ours = inputs(request_message(7, 40, stream))
    theirs = inputs(api_message)
    assert ours.keys() == theirs.keys()
    assert ours["stream"] == (b"\x01" if stream else b"\x00")
    assert {k: v for k, v in ours.items() if k != "stream"} == {
        k: v for k, v in theirs.items() if k != "stream"
    }
