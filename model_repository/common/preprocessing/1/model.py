"""Triton adapter for `inference.preprocessing` (prompt -> tensorrt_llm inputs)."""

from __future__ import annotations

import json
from typing import Any

import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from inference.preprocessing import Preprocessor, PreprocessRequest, PreprocessResult
from inference.request_errors import INPUT_ERRORS, input_error_message

_OUTPUTS = {
    "INPUT_ID": "input_id",
    "REQUEST_INPUT_LEN": "request_input_len",
    "REQUEST_OUTPUT_LEN": "request_output_len",
    "STOP_WORDS_IDS": "stop_words_ids",
    "BAD_WORDS_IDS": "bad_words_ids",
    "OUT_END_ID": "out_end_id",
    "OUT_PAD_ID": "out_pad_id",
    "EMBEDDING_BIAS": "embedding_bias",
}


def _input(request: Any, name: str) -> npt.NDArray[Any] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def _parse(request: Any) -> PreprocessRequest:
    output_lengths = _input(request, "REQUEST_OUTPUT_LEN")
    if output_lengths is None:
        raise ValueError("REQUEST_OUTPUT_LEN (max_tokens) is required")
    return PreprocessRequest(
        output_lengths=output_lengths,
        fit_output_lengths=_input(request, "FIT_OUTPUT_LEN"),
        queries=_input(request, "QUERY"),
        messages=_input(request, "MESSAGES"),
        stop_words=_input(request, "STOP_WORDS_DICT"),
        bad_words=_input(request, "BAD_WORDS_DICT"),
        end_ids=_input(request, "END_ID"),
        pad_ids=_input(request, "PAD_ID"),
        tools=_input(request, "TOOLS"),
        logit_bias_ids=_input(request, "LOGIT_BIAS_IDS"),
        logit_bias_weights=_input(request, "LOGIT_BIAS_WEIGHTS"),
    )


def _response(result: PreprocessResult) -> Any:
    tensors = [pb_utils.Tensor(name, getattr(result, field)) for name, field in _OUTPUTS.items()]
    return pb_utils.InferenceResponse(output_tensors=tensors)


class TritonPythonModel:
    """Tokenizes prompts; bad input fails only its own request."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = json.loads(args["model_config"])["parameters"]
        self._preprocessor = Preprocessor.from_dir(
            parameters["tokenizer_dir"]["string_value"],
            int(parameters["max_context_tokens"]["string_value"]),
            int(parameters.get("vocab_size", {}).get("string_value") or 0),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(_response(self._preprocessor(_parse(request))))
            except INPUT_ERRORS as exc:
                message = input_error_message(exc)
                error = pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
        return responses
