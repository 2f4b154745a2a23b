"""OpenAI's ``logit_bias`` as TensorRT-LLM's dense ``embedding_bias``.

OpenAI sends a map of token id -> bias in [-100, 100]; the ensemble carries it as two parallel
tensors (``logit_bias_ids`` INT32, ``logit_bias_weights`` FP32) and preprocessing turns each
request's pairs into one bias value per vocabulary entry, which ``tensorrt_llm`` adds to the logits
before anything else (TensorRT-LLM's order). A request without pairs gets a ``[batch, 0]`` tensor,
which ``tensorrt_llm`` reads as "no bias", as TensorRT-LLM's own preprocessing does.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
MAX_BIAS: Final = 100.0
ERROR_PREFIX: Final = "invalid_logit_bias:"


def dense_logit_bias(
    ids: npt.NDArray[Any] | None,
    weights: npt.NDArray[Any] | None,
    vocab_size: int,
    batch_size: int,
    width: int = 0,
) -> FloatArray:
    """``[batch, vocab]`` biases from ``[batch, n]`` ids and weights, or ``[batch, 0]`` if none.

    Ids are checked against ``vocab_size`` (the tokenizer's); the rows are ``width`` wide when
    that is larger: an engine whose vocabulary is padded (tensor parallelism) takes a bias as
    wide as its logits, the padding unbiased.

    Raises ``ValueError`` (message starting with ``invalid_logit_bias:``) for ids outside the
    vocabulary, weights outside [-100, 100] and ids without weights (or the reverse).
    """
    if ids is None and weights is None:
        return np.zeros((batch_size, 0), dtype=np.float32)
    if ids is None or weights is None:
        raise ValueError(f"{ERROR_PREFIX} logit_bias_ids and logit_bias_weights go together")
    ids, weights = ids.reshape(batch_size, -1), weights.reshape(batch_size, -1)
    if ids.shape != weights.shape:
        raise ValueError(
            f"{ERROR_PREFIX} {ids.shape[1]} token ids but {weights.shape[1]} bias values"
        )
    if ids.size == 0:
        return np.zeros((batch_size, 0), dtype=np.float32)
    _check(ids, weights, vocab_size)
    bias = np.zeros((batch_size, max(vocab_size, width)), dtype=np.float32)
    for row in range(batch_size):
        # Assignment, not accumulation: a repeated id keeps its last value, as a JSON map would.
        bias[row, ids[row]] = weights[row]
    return bias


def _check(ids: npt.NDArray[Any], weights: npt.NDArray[Any], vocab: int) -> None:
    outside = ids[(ids < 0) | (ids >= vocab)]
    if outside.size:
        raise ValueError(
            f"{ERROR_PREFIX} token id {int(outside[0])} is not in the vocabulary [0, {vocab})"
        )
    bad = weights[~(np.abs(weights) <= MAX_BIAS)]  # also catches NaN
    if bad.size:
        raise ValueError(
            f"{ERROR_PREFIX} bias {float(bad[0])} is outside [-{MAX_BIAS:g}, {MAX_BIAS:g}]"
        )
