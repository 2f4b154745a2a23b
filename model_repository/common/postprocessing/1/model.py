"""Triton adapter for `inference.postprocessing` (streamed ids -> text deltas) and
`inference.logprobs` (the tokens of each response with their log probabilities)."""

from __future__ import annotations

import json
from typing import Any

import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from inference.logprobs import LogprobsBuilder, TokenLogprobs
from inference.postprocessing import Postprocessor
from inference.request_errors import INPUT_ERRORS, input_error_message
from inference.token_bytes import token_bytes_table
from inference.tokenization import load_tokenizer

_LOGPROB_OUTPUTS = {
    "OUTPUT_TOKENS": "tokens",
    "OUTPUT_TOKEN_LOGPROBS": "logprobs",
    "TOP_LOGPROB_TOKENS": "top_tokens",
    "TOP_LOGPROB_VALUES": "top_logprobs",
}


def _input(request: Any, name: str) -> npt.NDArray[Any] | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class TritonPythonModel:
    """Decodes each response of a stream with the state of its request id."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = json.loads(args["model_config"])["parameters"]
        tokenizer = load_tokenizer(parameters["tokenizer_dir"]["string_value"])
        self._postprocessor = Postprocessor(
            tokenizer,
            cache_size=int(parameters["detokenizer_cache_size"]["string_value"]),
            ttl_s=float(parameters["detokenizer_ttl_s"]["string_value"]),
        )
        self._logprobs = LogprobsBuilder(
            token_bytes_table(tokenizer), int(parameters["top_logprobs_k"]["string_value"])
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(self._response(request))
            except INPUT_ERRORS as exc:
                message = input_error_message(exc)
                error = pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
        return responses

    def _response(self, request: Any) -> Any:
        tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy()
        lengths = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH").as_numpy()
        detokenized = self._postprocessor(request.request_id(), tokens, lengths)
        logprobs: TokenLogprobs = self._logprobs(
            tokens,
            lengths,
            output_log_probs=_input(request, "OUTPUT_LOG_PROBS"),
            generation_logits=_input(request, "GENERATION_LOGITS"),
        )
        outputs = [
            pb_utils.Tensor("OUTPUT", detokenized.text),
            pb_utils.Tensor("OUTPUT_PENDING", detokenized.pending),
        ]
        outputs += [
            pb_utils.Tensor(name, getattr(logprobs, field))
            for name, field in _LOGPROB_OUTPUTS.items()
        ]
        return pb_utils.InferenceResponse(output_tensors=outputs)
