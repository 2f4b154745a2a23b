"""TensorRT-LLM ``tensorrt_llm`` tensors to a :class:`GenerationRequest`, and outputs back.

Arrays arrive as Triton's Python backend hands them over: batch dim first (always 1 here), and
scalar inputs (declared ``dims: [1]`` with ``reshape: { shape: [] }``) as shape ``[1]``. Outputs
are built the same way: ``output_ids`` ``[1, beam=1, n]``, the per-beam ones ``[1, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from inference.request import GenerationOutput, GenerationRequest, GuidedDecoding, TokenWords

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class ParsedRequest:
    """A generation request plus how its responses must be shaped."""

    generation: GenerationRequest
    exclude_input_in_output: bool


def _scalar(tensors: Mapping[str, Array], name: str) -> float | int | bool | None:
    array = tensors.get(name)
    if array is None or array.size == 0:
        return None
    if array.size != 1:
        raise ValueError(f"{name} must hold one value per request, got shape {list(array.shape)}")
    value: float | int | bool = array.reshape(-1)[0].item()
    return value


def _int(tensors: Mapping[str, Array], name: str, default: int) -> int:
    value = _optional_int(tensors, name)
    return default if value is None else value


def _optional_int(tensors: Mapping[str, Array], name: str) -> int | None:
    value = _scalar(tensors, name)
    return None if value is None else int(value)


def _float(tensors: Mapping[str, Array], name: str, default: float) -> float:
    value = _scalar(tensors, name)
    return default if value is None else float(value)


def _bool(tensors: Mapping[str, Array], name: str, default: bool) -> bool:
    value = _scalar(tensors, name)
    return default if value is None else bool(value)


def _string(tensors: Mapping[str, Array], name: str) -> str | None:
    array = tensors.get(name)
    if array is None or array.size == 0:
        return None
    if array.size != 1:
        raise ValueError(f"{name} must hold one value per request, got shape {list(array.shape)}")
    # BYTES tensors arrive as object arrays of bytes.
    value = array.reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_guided_decoding(tensors: Mapping[str, Array]) -> GuidedDecoding | None:
    """TensorRT-LLM's ``guided_decoding_guide_type`` / ``guided_decoding_guide`` (both [1]).

    No type (or an empty one) means no guided decoding.
    """
    guide_type = _string(tensors, "guided_decoding_guide_type")
    if not guide_type:
        return None
    return GuidedDecoding.parse(guide_type, _string(tensors, "guided_decoding_guide"))


def parse_words_list(array: Array | None) -> TokenWords:
    """Decode TensorRT-LLM's ``[batch=1, 2, n]`` word lists.

    Row 0 holds every word's ids back to back; row 1 the end offset of each word, padded with
    -1. An absent or empty tensor means no words.
    """
    if array is None or array.size == 0:
        return ()
    table = array.reshape(-1, 2, array.shape[-1])
    if table.shape[0] != 1:
        raise ValueError("word lists must hold one request")
    ids, offsets = table[0, 0].tolist(), table[0, 1].tolist()
    words: list[tuple[int, ...]] = []
    start = 0
    for end in offsets:
        if end < 0:
            break
        if end < start or end > len(ids):
            raise ValueError(f"bad word-list offset {end}")
        if end > start:
            words.append(tuple(int(token) for token in ids[start:end]))
        start = end
    return tuple(words)


def wants_stop(tensors: Mapping[str, Array]) -> bool:
    """Whether this is TensorRT-LLM's ``stop`` request: cancel the request with the same id."""
    return _bool(tensors, "stop", False)


def parse_request(
    tensors: Mapping[str, Array],
    request_id: str,
    default_end_id: int | None,
    exclude_input_in_output: bool = False,
) -> ParsedRequest:
    """Build the engine's request from the named input arrays of one Triton request."""
    if _int(tensors, "beam_width", 1) != 1:
        raise ValueError("beam_width other than 1 is not supported by the CPU engine")
    if _int(tensors, "num_return_sequences", 1) != 1:
        raise ValueError("num_return_sequences other than 1 is not supported by the CPU engine")
    end_id = _optional_int(tensors, "end_id")
    generation = GenerationRequest(
        input_ids=_input_ids(tensors),
        max_new_tokens=_int(tensors, "request_output_len", 0),
        request_id=request_id,
        end_id=default_end_id if end_id is None else end_id,
        pad_id=_optional_int(tensors, "pad_id"),
        temperature=_float(tensors, "temperature", 1.0),
        top_k=_int(tensors, "runtime_top_k", 0),
        top_p=_float(tensors, "runtime_top_p", 0.0),
        seed=_optional_int(tensors, "seed"),
        min_tokens=_int(tensors, "min_tokens", 0),
        repetition_penalty=_float(tensors, "repetition_penalty", 1.0),
        presence_penalty=_float(tensors, "presence_penalty", 0.0),
        frequency_penalty=_float(tensors, "frequency_penalty", 0.0),
        stop_words=parse_words_list(tensors.get("stop_words_list")),
        bad_words=parse_words_list(tensors.get("bad_words_list")),
        embedding_bias=_embedding_bias(tensors.get("embedding_bias")),
        guided_decoding=parse_guided_decoding(tensors),
        return_log_probs=_bool(tensors, "return_log_probs", False),
        return_generation_logits=_bool(tensors, "return_generation_logits", False),
        streaming=_bool(tensors, "streaming", False),
    )
    check_sampling(generation)
    exclude = _bool(tensors, "exclude_input_in_output", exclude_input_in_output)
    return ParsedRequest(generation, exclude_input_in_output=exclude)


def check_sampling(request: GenerationRequest) -> None:
    """Refuse sampling controls outside their domain, as TensorRT-LLM's SamplingConfig does,
    instead of sampling from NaNs or silently ignoring them."""
    finite = {
        "temperature": request.temperature,
        "runtime_top_p": request.top_p,
        "repetition_penalty": request.repetition_penalty,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    for name, value in finite.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if request.temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {request.temperature}")
    if not 0.0 <= request.top_p <= 1.0:
        raise ValueError(f"runtime_top_p must lie in [0, 1], got {request.top_p}")
    if request.top_k < 0:
        raise ValueError(f"runtime_top_k must be >= 0, got {request.top_k}")
    if request.repetition_penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0, got {request.repetition_penalty}")
    if request.min_tokens < 0:
        raise ValueError(f"min_tokens must be >= 0, got {request.min_tokens}")


def _input_ids(tensors: Mapping[str, Array]) -> tuple[int, ...]:
    array = tensors.get("input_ids")
    if array is None or array.size == 0:
        raise ValueError("input_ids is required")
    if array.ndim != 2 or array.shape[0] != 1:
        raise ValueError(f"input_ids must have shape [1, n], got {list(array.shape)}")
    ids = array[0].tolist()
    # input_lengths wins over the row length, as in TensorRT-LLM (rows may be padded).
    length = _int(tensors, "input_lengths", len(ids))
    if not 0 < length <= len(ids):
        raise ValueError(f"input_lengths {length} does not fit input_ids of length {len(ids)}")
    return tuple(int(token) for token in ids[:length])


def _embedding_bias(array: Array | None) -> torch.Tensor | None:
    if array is None or array.size == 0:
        return None
    bias = torch.from_numpy(np.ascontiguousarray(array.reshape(-1), dtype=np.float32))
    # TensorRT-LLM clients send an all-zero bias to mean "none".
    return None if not torch.any(bias) else bias


def response_arrays(output: GenerationOutput, parsed: ParsedRequest) -> dict[str, Array]:
    """The output tensors of one response, each with the batch dim (1) in front."""
    request = parsed.generation
    tokens = list(output.token_ids)
    if not request.streaming and not parsed.exclude_input_in_output:
        tokens = list(request.input_ids) + tokens

    def per_beam(value: float, dtype: type[np.generic]) -> Array:
        return np.array([[value]], dtype=dtype)

    arrays = {
        "output_ids": np.array([[tokens]], dtype=np.int32).reshape(1, 1, len(tokens)),
        "sequence_length": per_beam(len(tokens), np.int32),
        "cum_log_probs": per_beam(output.cum_log_prob, np.float32),
        "output_log_probs": np.array(output.log_probs, dtype=np.float32).reshape(1, 1, -1),
        "num_input_tokens": per_beam(output.num_input_tokens, np.int32),
        "num_output_tokens": per_beam(len(output.token_ids), np.int32),
        "batch_index": per_beam(0, np.int32),
        "sequence_index": per_beam(0, np.int32),
    }
    if output.generation_logits is not None:
        # [batch, beam, tokens, vocab], one row per token of this response.
        logits = output.generation_logits.numpy().astype(np.float32, copy=False)
        arrays["generation_logits"] = logits.reshape(1, 1, *logits.shape)
    return arrays
