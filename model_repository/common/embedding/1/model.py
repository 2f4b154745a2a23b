"""Triton adapter for `inference.embedding` (texts or token ids -> unit vectors + counts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from inference.embedding import EmbeddingBatch, SentenceEmbedder
from inference.request_errors import INPUT_ERRORS, input_error_message


class TritonPythonModel:
    """Texts of a dynamic batch go through one forward pass; token-id requests each get one.

    A request the model cannot take (no input, ids outside the vocabulary, an input longer
    than the model reads without ``TRUNCATE``) gets an ``invalid_request:`` error response of
    its own; the other requests of the batch are answered as usual.
    """

    def initialize(self, args: dict[str, str]) -> None:
        self._embedder = SentenceEmbedder.load(device="cpu")

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        text_requests: list[tuple[int, list[str]]] = []
        for index, request in enumerate(requests):
            try:
                truncate = _flag(pb_utils.get_input_tensor_by_name(request, "TRUNCATE"))
                ids = pb_utils.get_input_tensor_by_name(request, "INPUT_IDS")
                texts = pb_utils.get_input_tensor_by_name(request, "INPUT_TEXT")
                if (ids is None) == (texts is None):
                    raise ValueError("send exactly one of INPUT_TEXT and INPUT_IDS")
                if ids is None:
                    text_requests.append((index, self._checked_texts(texts, truncate)))
                    continue
                rows = [_unpadded(row) for row in np.atleast_2d(ids.as_numpy())]
                responses[index] = _response(self._embedder.embed_ids(rows, truncate), 0, len(rows))
            except INPUT_ERRORS as exc:
                responses[index] = _error(exc)
        self._embed_texts(text_requests, responses)
        return responses

    def _checked_texts(self, tensor: Any, truncate: bool) -> list[str]:
        texts = [_text(v) for v in np.asarray(tensor.as_numpy()).reshape(-1)]
        if not truncate:
            self._embedder.check_lengths(self._embedder.token_lengths(texts))
        return texts

    def _embed_texts(
        self, text_requests: list[tuple[int, list[str]]], responses: list[Any]
    ) -> None:
        # Each request's lengths were checked (or it asked for truncation): cutting is safe.
        batch = self._embedder.embed([t for _, texts in text_requests for t in texts], True)
        start = 0
        for index, texts in text_requests:
            responses[index] = _response(batch, start, start + len(texts))
            start += len(texts)


def _unpadded(row: np.ndarray[Any, Any]) -> list[int]:
    """A row without its right padding (-1); any other negative id stays, to be refused."""
    values = [int(t) for t in row]
    while values and values[-1] == -1:
        values.pop()
    return values


def _flag(tensor: Any) -> bool:
    return tensor is not None and bool(np.asarray(tensor.as_numpy()).any())


def _response(batch: EmbeddingBatch, start: int, stop: int) -> Any:
    tensors = [
        pb_utils.Tensor("EMBEDDING", batch.vectors[start:stop]),
        pb_utils.Tensor(
            "NUM_TOKENS", np.ascontiguousarray(batch.num_tokens[start:stop].reshape(-1, 1))
        ),
    ]
    return pb_utils.InferenceResponse(output_tensors=tensors)


def _error(exc: BaseException) -> Any:
    error = pb_utils.TritonError(input_error_message(exc), pb_utils.TritonError.INVALID_ARG)
    return pb_utils.InferenceResponse(error=error)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise TypeError("INPUT_TEXT must hold strings")
