"""Triton adapter for `inference.embedding` (texts or token ids -> unit vectors + counts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from inference.embedding import EmbeddingBatch, SentenceEmbedder


class TritonPythonModel:
    """Texts of a dynamic batch go through one forward pass; token-id requests each get one."""

    def initialize(self, args: dict[str, str]) -> None:
        self._embedder = SentenceEmbedder.load(device="cpu")

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        text_requests: list[tuple[int, list[str]]] = []
        for index, request in enumerate(requests):
            ids = pb_utils.get_input_tensor_by_name(request, "INPUT_IDS")
            if ids is None:
                texts = pb_utils.get_input_tensor_by_name(request, "INPUT_TEXT")
                text_requests.append((index, [_text(v) for v in texts.as_numpy()[:, 0]]))
                continue
            rows = [[int(t) for t in row if t >= 0] for row in ids.as_numpy()]
            try:
                responses[index] = _response(self._embedder.embed_ids(rows), 0, len(rows))
            except ValueError as exc:
                responses[index] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        self._embed_texts(text_requests, responses)
        return responses

    def _embed_texts(
        self, text_requests: list[tuple[int, list[str]]], responses: list[Any]
    ) -> None:
        batch = self._embedder.embed([t for _, texts in text_requests for t in texts])
        start = 0
        for index, texts in text_requests:
            responses[index] = _response(batch, start, start + len(texts))
            start += len(texts)


def _response(batch: EmbeddingBatch, start: int, stop: int) -> Any:
    tensors = [
        pb_utils.Tensor("EMBEDDING", batch.vectors[start:stop]),
        pb_utils.Tensor(
            "NUM_TOKENS", np.ascontiguousarray(batch.num_tokens[start:stop].reshape(-1, 1))
        ),
    ]
    return pb_utils.InferenceResponse(output_tensors=tensors)


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
