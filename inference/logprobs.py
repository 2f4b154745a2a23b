"""Per-token log probabilities for OpenAI's ``logprobs`` / ``top_logprobs``, in postprocessing.

Each response of ``tensorrt_llm`` carries its new tokens (``output_ids``), their log
probabilities (``output_log_probs``, with ``return_log_probs``) and, with
``return_generation_logits``, the raw logits each of them was drawn from (``generation_logits``).
This module turns one response into what the API needs to build ``logprobs.content``: each
token's raw bytes, its log probability and, when the logits are there, its ``k`` most likely
alternatives. ``k`` is fixed (OpenAI's maximum, 20): the request's ``top_logprobs`` cannot reach
postprocessing, because Triton refuses an ensemble step fed both from before and from after a
decoupled model; the API keeps the first ``top_logprobs`` of them.

All values are the log-softmax of the model's raw logits at temperature 1, before bias,
penalties and grammar: the CPU twin's ``output_log_probs`` are computed the same way, so a
token's ``logprob`` does not change with ``top_logprobs``. When logits are present, the chosen
token's value is read from them too.

Log probabilities cover the generated tokens only, which come last in ``output_ids`` (after the
prompt unless ``exclude_input_in_output``); the tokens reported are those last ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from inference.tokenization import IntArray

ObjectArray = npt.NDArray[np.object_]
FloatArray = npt.NDArray[np.float32]
DEFAULT_TOP_LOGPROBS: Final = 20


@dataclass(frozen=True)
class TokenLogprobs:
    """The outputs, named after the Triton tensors they become (``B`` is the batch)."""

    tokens: ObjectArray  # OUTPUT_TOKENS [B, T]: each token's raw bytes
    logprobs: FloatArray  # OUTPUT_TOKEN_LOGPROBS [B, T], or [B, 0] without log probs
    top_tokens: ObjectArray  # TOP_LOGPROB_TOKENS [B, T, K], K = 0 without generation logits
    top_logprobs: FloatArray  # TOP_LOGPROB_VALUES [B, T, K]


@dataclass(frozen=True)
class _Row:
    ids: list[int]
    logprobs: npt.NDArray[np.float64] | None
    top_ids: npt.NDArray[np.int64]
    top_logprobs: npt.NDArray[np.float64]


def log_softmax(logits: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Log-softmax over the last axis, in float64 (``-inf`` logits stay ``-inf``)."""
    values = logits.astype(np.float64)
    peak = np.max(values, axis=-1, keepdims=True)
    shifted = values - peak
    result: npt.NDArray[np.float64] = shifted - np.log(np.sum(np.exp(shifted), -1, keepdims=True))
    return result


def top_k(log_probs: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """Ids of the ``k`` largest values of each row, largest first (ties: lower id first)."""
    k = min(k, log_probs.shape[-1])
    if k <= 0:
        return np.zeros((*log_probs.shape[:-1], 0), dtype=np.int64)
    # Stable sort of the negated values keeps equal values in id order.
    order = np.argsort(-log_probs, axis=-1, kind="stable")[..., :k]
    return order.astype(np.int64)


class LogprobsBuilder:
    """Builds :class:`TokenLogprobs` with one tokenizer's byte table."""

    def __init__(
        self, token_bytes: Sequence[bytes], top_logprobs: int = DEFAULT_TOP_LOGPROBS
    ) -> None:
        self._bytes = token_bytes
        self._top_logprobs = top_logprobs

    def __call__(
        self,
        tokens: IntArray,
        lengths: IntArray,
        output_log_probs: npt.NDArray[Any] | None = None,
        generation_logits: npt.NDArray[Any] | None = None,
    ) -> TokenLogprobs:
        """Beam 0 of every batch row: ``tokens`` ``[B, beams, T]``, ``lengths`` ``[B, beams]``,
        ``output_log_probs`` ``[B, beams, T']``, ``generation_logits`` ``[B, beams, T', V]``.
        """
        k = 0
        if generation_logits is not None and generation_logits.size:
            k = min(self._top_logprobs, generation_logits.shape[-1])
        rows = [
            self._row(
                tokens[b, 0, : max(int(lengths[b, 0]), 0)].tolist(),
                None if output_log_probs is None else output_log_probs[b, 0],
                None if generation_logits is None else generation_logits[b, 0],
                k,
            )
            for b in range(tokens.shape[0])
        ]
        return self._pack(rows, k)

    def _row(
        self,
        ids: list[int],
        log_probs: npt.NDArray[Any] | None,
        logits: npt.NDArray[Any] | None,
        k: int,
    ) -> _Row:
        no_top = (np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float64))
        if logits is not None and logits.shape[0] > 0:
            count = min(logits.shape[0], len(ids))
            ids = ids[len(ids) - count :]
            all_log_probs = log_softmax(logits[:count])
            chosen = all_log_probs[np.arange(count), ids]
            top_ids = top_k(all_log_probs, k)
            return _Row(ids, chosen, top_ids, np.take_along_axis(all_log_probs, top_ids, -1))
        if log_probs is not None and log_probs.shape[0] > 0:
            count = min(log_probs.shape[0], len(ids))
            values = log_probs[:count].astype(np.float64)
            return _Row(ids[len(ids) - count :], values, *no_top)
        return _Row(ids, None, *no_top)

    def _pack(self, rows: list[_Row], k: int) -> TokenLogprobs:
        width = max((len(row.ids) for row in rows), default=0)
        with_values = any(row.logprobs is not None for row in rows)
        tokens = np.full((len(rows), width), b"", dtype=np.object_)
        values = np.zeros((len(rows), width if with_values else 0), dtype=np.float32)
        top_tokens = np.full((len(rows), width, k), b"", dtype=np.object_)
        top_values = np.zeros((len(rows), width, k), dtype=np.float32)
        for b, row in enumerate(rows):
            # Element by element: numpy would turn a list of bytes into a fixed-width bytes
            # array first, which drops trailing NUL bytes.
            for t, token_id in enumerate(row.ids):
                tokens[b, t] = self._token_bytes(token_id)
            if row.logprobs is not None:
                values[b, : len(row.ids)] = row.logprobs
            for (position, rank), top_id in np.ndenumerate(row.top_ids):
                top_tokens[b, position, rank] = self._token_bytes(int(top_id))
            if row.top_ids.size:
                top_values[b, : len(row.ids)] = row.top_logprobs
        return TokenLogprobs(tokens, values, top_tokens, top_values)

    def _token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id] if 0 <= token_id < len(self._bytes) else b""
