"""The ensemble's inputs for guided decoding, logit bias, log probabilities and tools, against
the real Triton server of the session stack, over a gRPC stream as the API sends them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.tensors import add_input, decode_array, decode_bytes, outputs_by_name
from inference.tokenization import load_tokenizer
from launcher.settings import LauncherSettings
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

Input = tuple[str, str, list[object]]
MESSAGES = json.dumps([{"role": "user", "content": "Is the sky blue? Answer in JSON."}])
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        "confidence": {"type": "integer", "minimum": 0, "maximum": 9},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


@dataclass
class Reply:
    """Everything one streamed request returned."""

    text: str = ""
    output_tokens: list[bytes] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top_tokens: list[list[bytes]] = field(default_factory=list)
    top_values: list[list[float]] = field(default_factory=list)
    completion_tokens: int = 0
    error: str | None = None


def generate(
    stack: Stack, inputs: list[Input], max_tokens: int = 40, prompt: Input | None = None
) -> Reply:
    """One streamed ensemble request (chat ``MESSAGES`` unless ``prompt`` says otherwise)."""
    message = service_pb2.ModelInferRequest(model_name="ensemble", id="e2e-features")
    message.parameters["triton_enable_empty_final_response"].bool_param = True
    base: list[Input] = [
        prompt or ("messages", "BYTES", [MESSAGES]),
        ("max_tokens", "INT32", [max_tokens]),
        ("stream", "BOOL", [True]),
        ("exclude_input_in_output", "BOOL", [True]),
        ("return_num_output_tokens", "BOOL", [True]),
    ]
    for name, datatype, values in [*base, *inputs]:
        add_input(message, name, datatype, values)
    reply = Reply()
    with grpc.insecure_channel(stack.triton_grpc) as channel:
        for response in _stream(service_pb2_grpc.GRPCInferenceServiceStub(channel), message):
            if response.error_message:
                reply.error = response.error_message
                break
            _collect(reply, response.infer_response)
    return reply


def _stream(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, message: service_pb2.ModelInferRequest
) -> Iterator[service_pb2.ModelStreamInferResponse]:
    done = threading.Event()

    def requests() -> Iterator[service_pb2.ModelInferRequest]:
        yield message
        done.wait(60)  # closing the request side early would half-close the stream

    try:
        for response in stub.ModelStreamInfer(requests(), timeout=60):
            yield response
            final = response.infer_response.parameters.get("triton_final_response")
            if response.error_message or (final is not None and final.bool_param):
                return
    finally:
        done.set()


def _collect(reply: Reply, response: service_pb2.ModelInferResponse) -> None:
    raw = outputs_by_name(response)
    if "text_output" in raw:
        reply.text += b"".join(decode_bytes(raw["text_output"])).decode()
    if "output_tokens" in raw:
        reply.output_tokens += decode_bytes(raw["output_tokens"])
    shapes = {output.name: list(output.shape) for output in response.outputs}
    if "top_logprob_tokens" in raw:
        k = shapes["top_logprob_tokens"][-1]
        flat = decode_bytes(raw["top_logprob_tokens"])
        reply.top_tokens += [flat[i : i + k] for i in range(0, len(flat), k)] if k else []
    for name, target in (
        ("output_token_logprobs", reply.logprobs),
        ("top_logprob_values", reply.top_values),
    ):
        array = decode_array(response, name)
        if array is not None:
            target += array[0].tolist()  # a batch of one
    count = decode_array(response, "num_output_tokens")
    if count is not None:
        reply.completion_tokens += int(count.sum())


def test_json_schema_output_is_valid_and_ends_on_its_own(stack: Stack) -> None:
    reply = generate(
        stack,
        [
            ("guided_decoding_guide_type", "BYTES", ["json_schema"]),
            ("guided_decoding_guide", "BYTES", [json.dumps(SCHEMA)]),
        ],
    )
    assert reply.error is None
    document = json.loads(reply.text)
    assert document["answer"] in ("yes", "no")
    assert 0 <= document["confidence"] <= 9
    assert reply.completion_tokens < 40  # ended by the grammar, not by max_tokens


def test_a_guide_that_does_not_compile_is_a_request_error(stack: Stack) -> None:
    reply = generate(
        stack,
        [
            ("guided_decoding_guide_type", "BYTES", ["json_schema"]),
            ("guided_decoding_guide", "BYTES", ["{not json"]),
        ],
    )
    assert reply.error is not None and "invalid_guided_decoding:" in reply.error


def test_logit_bias_steers_and_refuses_unknown_ids(stack: Stack) -> None:
    free = generate(stack, [("temperature", "FP32", [0.0])], max_tokens=4)
    assert free.error is None and free.output_tokens
    banana = generate(
        stack,
        [
            ("logit_bias_ids", "INT32", [_token_id(" banana")]),
            ("logit_bias_weights", "FP32", [100.0]),
        ],
        max_tokens=4,
        prompt=("text_input", "BYTES", ["Fruit:"]),
    )
    assert banana.text == " banana" * 4
    unknown = generate(
        stack, [("logit_bias_ids", "INT32", [10**6]), ("logit_bias_weights", "FP32", [1.0])]
    )
    assert unknown.error is not None and "invalid_logit_bias:" in unknown.error


def _token_id(text: str) -> int:
    """The id of a one-token text in the tokenizer the stack serves."""
    tokenizer_dir = LauncherSettings().tokenizer_dir
    assert tokenizer_dir is not None
    ids = load_tokenizer(tokenizer_dir).encode(text, add_special_tokens=False)
    assert len(ids) == 1, f"{text!r} is not one token"
    return int(ids[0])


def test_log_probabilities_come_with_each_token(stack: Stack) -> None:
    reply = generate(
        stack,
        [
            ("temperature", "FP32", [0.0]),
            ("return_log_probs", "BOOL", [True]),
            ("return_generation_logits", "BOOL", [True]),
        ],
        max_tokens=8,
        # A story runs past 8 tokens (the JSON question's answer may end sooner).
        prompt=("text_input", "BYTES", ["Once upon a time"]),
    )
    assert reply.error is None
    assert b"".join(reply.output_tokens).decode() == reply.text
    assert len(reply.logprobs) == len(reply.output_tokens) == len(reply.top_values) == 8
    for chosen, token, tops, values in zip(
        reply.logprobs, reply.output_tokens, reply.top_tokens, reply.top_values, strict=True
    ):
        assert len(tops) == len(values) == 20
        assert values == sorted(values, reverse=True)
        # Greedy: the chosen token is the most likely one, with the same value.
        assert tops[0] == token
        assert chosen == pytest.approx(values[0], abs=1e-5)
        assert np.exp(values).sum() <= 1.0 + 1e-5


def test_tools_reach_the_template_and_need_messages(stack: Stack) -> None:
    tools = json.dumps([{"type": "function", "function": {"name": "f", "parameters": {}}}])
    conversation = json.dumps(
        [
            {"role": "user", "content": "Call f."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]
    )
    ok = generate(
        stack, [("tools", "BYTES", [tools])], prompt=("messages", "BYTES", [conversation])
    )
    assert ok.error is None and ok.completion_tokens > 0
    refused = generate(stack, [("tools", "BYTES", [tools])], prompt=("text_input", "BYTES", ["hi"]))
    assert refused.error is not None and "invalid_tools:" in refused.error


def test_min_tokens_holds_the_reply_past_every_end_id(stack: Stack) -> None:
    # tiny-chat ends chat replies with <|im_end|> (the end id) and raw text with
    # <|endoftext|> (its other end id, sent as a stop word): min_tokens must hold back both,
    # or the reply ends early (it did, at 31 of 64 tokens, in the peer benchmark's direct runs).
    story: Input = ("text_input", "BYTES", ["Once upon a time"])
    for prompt in (None, story):
        natural = generate(stack, [], max_tokens=60, prompt=prompt)
        assert natural.error is None and natural.completion_tokens < 60, natural
        held = generate(stack, [("min_tokens", "INT32", [60])], max_tokens=60, prompt=prompt)
        assert held.error is None, held.error
        assert held.completion_tokens == 60, (prompt, held.text)
