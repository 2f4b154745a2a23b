"""Triton adapter for `inference.postprocessing` (streamed ids -> text deltas)."""

from __future__ import annotations

import json
from typing import Any

import triton_python_backend_utils as pb_utils

from inference.postprocessing import Postprocessor
from inference.tokenization import load_tokenizer


class TritonPythonModel:
    """Decodes each response of a stream with the state of its request id."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = json.loads(args["model_config"])["parameters"]
        self._postprocessor = Postprocessor(
            load_tokenizer(parameters["tokenizer_dir"]["string_value"]),
            cache_size=int(parameters["detokenizer_cache_size"]["string_value"]),
            ttl_s=float(parameters["detokenizer_ttl_s"]["string_value"]),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                text = self._postprocessor(
                    request.request_id(),
                    pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy(),
                    pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH").as_numpy(),
                )
            except ValueError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            output = pb_utils.Tensor("OUTPUT", text)
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
