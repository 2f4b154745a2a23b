"""Triton adapter for `inference.embedding` (texts -> unit vectors + token counts)."""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils

from inference.embedding import SentenceEmbedder


class TritonPythonModel:
    """Embeds all texts of a dynamic batch in one forward pass, then splits per request."""

    def initialize(self, args: dict[str, str]) -> None:
        self._embedder = SentenceEmbedder.load(device="cpu")

    def execute(self, requests: list[Any]) -> list[Any]:
        texts_per_request = [
            [_text(v) for v in pb_utils.get_input_tensor_by_name(r, "INPUT_TEXT").as_numpy()[:, 0]]
            for r in requests
        ]
        batch = self._embedder.embed([t for texts in texts_per_request for t in texts])
        responses, start = [], 0
        for texts in texts_per_request:
            stop = start + len(texts)
            tensors = [
                pb_utils.Tensor("EMBEDDING", batch.vectors[start:stop]),
                pb_utils.Tensor("NUM_TOKENS", batch.num_tokens[start:stop].reshape(-1, 1)),
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = stop
        return responses


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
