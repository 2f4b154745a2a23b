"""Zero-cost ``tensorrt_llm``: the real model's tensor contract, no compute.

The benchmark renders this root with the CPU twin's ``config.pbtxt`` (same inputs, outputs and
parameters) and this file as the model, so the ensemble and the API cannot tell the difference
except that tokens arrive as fast as Triton's Python backend can send them. Filler tokens come
from the model's tokenizer so postprocessing detokenizes real text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from benchmarks.zero_engine import FILLER_TEXT, ZeroCostEngine, ZeroStream

_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def _parameter(config: dict[str, Any], key: str) -> str:
    value = str(config.get("parameters", {}).get(key, {}).get("string_value", "")).strip()
    return "" if value.startswith("${") else value


def _filler_ids(tokenizer_dir: str) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = [int(i) for i in tokenizer.encode(FILLER_TEXT, add_special_tokens=False)]
    specials = set(tokenizer.all_special_ids)
    return [i for i in ids if i not in specials] or [0]


def _scalar(request: Any, name: str, default: int) -> int:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    array = tensor.as_numpy()
    return default if array.size == 0 else int(array.reshape(-1)[0])


class TritonPythonModel:
    """Decoupled; responses are sent from the engine thread."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        tokenizer_dir = _parameter(config, "tokenizer_dir") or _parameter(config, "model_dir")
        self._engine = ZeroCostEngine(_filler_ids(tokenizer_dir))
        self._engine.start()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            if _scalar(request, "stop", 0):
                sender.send(flags=_FINAL)
                continue
            prompt = np.array([[_scalar(request, "input_lengths", 0)]], dtype=np.int32)
            self._engine.submit(
                ZeroStream(
                    output_len=_scalar(request, "request_output_len", 0),
                    emit=_emitter(sender, prompt),
                    streaming=bool(_scalar(request, "streaming", 0)),
                    is_cancelled=request.is_cancelled,
                )
            )

    def finalize(self) -> None:
        self._engine.close()


def _emitter(sender: Any, prompt: npt.NDArray[np.int32]) -> Any:
    def emit(token_ids: Sequence[int], final: bool) -> None:
        flags = _FINAL if final else 0
        if not token_ids:
            sender.send(flags=flags)
            return
        count = np.array([[len(token_ids)]], dtype=np.int32)
        tensors = [
            pb_utils.Tensor("output_ids", np.array(token_ids, dtype=np.int32).reshape(1, 1, -1)),
            pb_utils.Tensor("sequence_length", count),
            pb_utils.Tensor("cum_log_probs", np.zeros((1, 1), dtype=np.float32)),
            pb_utils.Tensor("output_log_probs", np.zeros((1, 1, 0), dtype=np.float32)),
            pb_utils.Tensor("num_input_tokens", prompt),
            pb_utils.Tensor("num_output_tokens", count),
            pb_utils.Tensor("batch_index", np.zeros((1, 1), dtype=np.int32)),
            pb_utils.Tensor("sequence_index", np.zeros((1, 1), dtype=np.int32)),
        ]
        sender.send(pb_utils.InferenceResponse(output_tensors=tensors), flags=flags)

    return emit
