"""TensorRT-LLM tensors in and out, as Triton's Python backend hands them over."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from inference.request import FinishReason, GenerationOutput, GuidedDecoding, GuideType
from inference.trtllm_io import (
    Array,
    parse_request,
    parse_words_list,
    response_arrays,
    wants_stop,
)


def scalar(value: object, dtype: type[np.generic]) -> Array:
    """A scalar input after reshape: shape [batch=1]."""
    return np.array([value], dtype=dtype)


def base_tensors(**extra: Array) -> dict[str, Array]:
    return {
        "input_ids": np.array([[5, 6, 7, 0]], dtype=np.int32),
        "input_lengths": scalar(3, np.int32),
        "request_output_len": scalar(10, np.int32),
        **extra,
    }


def test_words_list_decodes_ids_and_end_offsets() -> None:
    table = np.array([[[1, 2, 3, 4, 5, 0], [2, 3, 5, -1, -1, -1]]], dtype=np.int32)
    assert parse_words_list(table) == ((1, 2), (3,), (4, 5))
    assert parse_words_list(None) == ()
    assert parse_words_list(np.zeros((1, 2, 0), dtype=np.int32)) == ()


def test_words_list_rejects_offsets_past_the_ids() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_words_list(np.array([[[1, 2], [3, -1]]], dtype=np.int32))


def test_minimal_request_gets_tensorrt_llm_defaults() -> None:
    parsed = parse_request(base_tensors(), "id-1", default_end_id=2)
    request = parsed.generation
    assert request.input_ids == (5, 6, 7)  # input_lengths trims the padded row
    assert request.max_new_tokens == 10
    assert request.request_id == "id-1"
    assert request.end_id == 2
    assert request.is_greedy  # top_k 0 and top_p 0
    assert request.seed is None
    assert not request.streaming
    assert not parsed.exclude_input_in_output


def test_every_supported_input_is_read() -> None:
    tensors = base_tensors(
        end_id=scalar(9, np.int32),
        pad_id=scalar(0, np.int32),
        temperature=scalar(0.5, np.float32),
        runtime_top_k=scalar(40, np.int32),
        runtime_top_p=scalar(0.9, np.float32),
        seed=scalar(2**63 + 5, np.uint64),
        min_tokens=scalar(2, np.int32),
        repetition_penalty=scalar(1.5, np.float32),
        presence_penalty=scalar(0.25, np.float32),
        frequency_penalty=scalar(0.75, np.float32),
        stop_words_list=np.array([[[3, 4], [2, -1]]], dtype=np.int32),
        bad_words_list=np.array([[[8], [1]]], dtype=np.int32),
        embedding_bias=np.array([[0.0, 1.0, 0.0]], dtype=np.float32),
        return_log_probs=scalar(True, np.bool_),
        streaming=scalar(True, np.bool_),
        exclude_input_in_output=scalar(True, np.bool_),
    )
    parsed = parse_request(tensors, "", default_end_id=2)
    request = parsed.generation
    assert (request.end_id, request.pad_id, request.top_k, request.min_tokens) == (9, 0, 40, 2)
    assert request.temperature == 0.5
    assert request.top_p == pytest.approx(0.9)
    assert request.seed == 2**63 + 5
    assert (request.repetition_penalty, request.presence_penalty) == (1.5, 0.25)
    assert request.frequency_penalty == 0.75
    assert request.stop_words == ((3, 4),)
    assert request.bad_words == ((8,),)
    assert request.embedding_bias is not None
    assert request.embedding_bias.tolist() == [0.0, 1.0, 0.0]
    assert request.return_log_probs and request.streaming
    assert parsed.exclude_input_in_output


def test_all_zero_embedding_bias_means_none() -> None:
    tensors = base_tensors(embedding_bias=np.zeros((1, 4), dtype=np.float32))
    assert parse_request(tensors, "", None).generation.embedding_bias is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"beam_width": scalar(2, np.int32)}, "beam_width"),
        ({"num_return_sequences": scalar(3, np.int32)}, "num_return_sequences"),
        ({"input_lengths": scalar(9, np.int32)}, "input_lengths"),
        ({"input_ids": np.zeros((2, 3), dtype=np.int32)}, "input_ids"),
        ({"temperature": np.ones((1, 2), dtype=np.float32)}, "temperature"),
        # Sampling controls outside their domain (TensorRT-LLM's SamplingConfig refuses them).
        ({"temperature": scalar(float("nan"), np.float32)}, "temperature must be a finite"),
        ({"temperature": scalar(-0.5, np.float32)}, "temperature must be >= 0"),
        ({"runtime_top_p": scalar(1.5, np.float32)}, "runtime_top_p"),
        ({"runtime_top_p": scalar(float("inf"), np.float32)}, "runtime_top_p"),
        ({"runtime_top_k": scalar(-1, np.int32)}, "runtime_top_k"),
        ({"repetition_penalty": scalar(0.0, np.float32)}, "repetition_penalty"),
        ({"presence_penalty": scalar(float("-inf"), np.float32)}, "presence_penalty"),
        ({"frequency_penalty": scalar(float("nan"), np.float32)}, "frequency_penalty"),
        ({"min_tokens": scalar(-2, np.int32)}, "min_tokens"),
    ],
)
def test_unsupported_or_malformed_inputs_are_refused(extra: dict[str, Array], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_request(base_tensors(**extra), "", None)


def test_stop_flag() -> None:
    assert wants_stop(base_tensors(stop=scalar(True, np.bool_)))
    assert not wants_stop(base_tensors())


def output(tokens: tuple[int, ...], finished: bool = False) -> GenerationOutput:
    return GenerationOutput(
        request_id="",
        token_ids=tokens,
        log_probs=tuple(-0.5 for _ in tokens),
        cum_log_prob=-1.5,
        num_input_tokens=3,
        num_generated_tokens=3,
        finished=finished,
        finish_reason=FinishReason.LENGTH if finished else None,
    )


def test_streaming_response_carries_only_new_tokens_with_batch_and_beam_dims() -> None:
    parsed = parse_request(base_tensors(streaming=scalar(True, np.bool_)), "", None)
    arrays = response_arrays(output((42,)), parsed)
    assert arrays["output_ids"].tolist() == [[[42]]]
    assert arrays["output_ids"].dtype == np.int32
    assert arrays["sequence_length"].tolist() == [[1]]
    assert arrays["output_log_probs"].tolist() == [[[-0.5]]]
    assert arrays["cum_log_probs"].tolist() == [[-1.5]]
    assert arrays["num_input_tokens"].tolist() == [[3]]
    assert arrays["num_output_tokens"].tolist() == [[1]]
    assert arrays["batch_index"].tolist() == [[0]]
    assert arrays["sequence_index"].tolist() == [[0]]


def test_non_streaming_response_includes_the_prompt_unless_excluded() -> None:
    parsed = parse_request(base_tensors(), "", None)
    arrays = response_arrays(output((8, 9), finished=True), parsed)
    assert arrays["output_ids"].tolist() == [[[5, 6, 7, 8, 9]]]
    assert arrays["sequence_length"].tolist() == [[5]]
    assert arrays["num_output_tokens"].tolist() == [[2]]
    excluded = parse_request(base_tensors(), "", None, exclude_input_in_output=True)
    assert response_arrays(output((8, 9), True), excluded)["output_ids"].tolist() == [[[8, 9]]]


def text(value: str) -> Array:
    """A BYTES input declared dims [1] without reshape: shape [batch=1, 1]."""
    return np.array([[value.encode()]], dtype=np.object_)


def test_guided_decoding_and_generation_logits_inputs() -> None:
    tensors = base_tensors(
        guided_decoding_guide_type=text("json_schema"),
        guided_decoding_guide=text('{"type": "object"}'),
        return_generation_logits=scalar(True, np.bool_),
    )
    request = parse_request(tensors, "", None).generation
    assert request.guided_decoding == GuidedDecoding(GuideType.JSON_SCHEMA, '{"type": "object"}')
    assert request.return_generation_logits
    plain = parse_request(base_tensors(guided_decoding_guide_type=text("")), "", None).generation
    assert plain.guided_decoding is None
    assert not plain.return_generation_logits


def test_unknown_guide_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^invalid_guided_decoding: "):
        parse_request(base_tensors(guided_decoding_guide_type=text("yaml")), "", None)


def test_generation_logits_come_back_per_token_with_batch_and_beam_dims() -> None:
    parsed = parse_request(base_tensors(streaming=scalar(True, np.bool_)), "", None)
    logits = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with_logits = replace(output((42, 43)), generation_logits=logits)
    arrays = response_arrays(with_logits, parsed)
    assert arrays["generation_logits"].shape == (1, 1, 2, 3)
    assert arrays["generation_logits"].dtype == np.float32
    assert arrays["generation_logits"][0, 0].tolist() == logits.tolist()
    assert "generation_logits" not in response_arrays(output((42,)), parsed)
