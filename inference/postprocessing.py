"""The `postprocessing` step on numpy arrays: streamed output ids in, text deltas out.

Triton's ensemble calls postprocessing once per response of the decoupled `tensorrt_llm` step,
each time with only the new tokens. Decoding every call on its own loses spaces and splits
characters, so one `IncrementalDetokenizer` per (request id, batch row, beam) lives across the
calls of a stream.

Assumptions, checked against Triton 2.51 (see model_repository/common/postprocessing):
- the ensemble passes the client's request id to composing models, and the API sends a
  unique id per request;
- postprocessing runs as ONE instance without dynamic batching, so the calls of one stream
  arrive in order and see the same state (instances are separate processes).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from inference.detokenizer import DetokenizerCache, IncrementalDetokenizer, TokenDecoder
from inference.tokenization import IntArray

ObjectArray = npt.NDArray[np.object_]
DEFAULT_CACHE_SIZE: Final = 4096
DEFAULT_TTL_S: Final = 600.0


class Postprocessor:
    """Per-request incremental detokenization of `TOKENS_BATCH` `[B, beams, T]` tensors."""

    def __init__(
        self,
        tokenizer: TokenDecoder,
        cache_size: int = DEFAULT_CACHE_SIZE,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self._tokenizer = tokenizer
        self._states = DetokenizerCache(self._new_detokenizer, capacity=cache_size, ttl_s=ttl_s)

    def _new_detokenizer(self) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(self._tokenizer)

    @property
    def active_streams(self) -> int:
        """How many (request, row, beam) states are kept."""
        return len(self._states)

    def __call__(self, request_id: str, tokens: IntArray, lengths: IntArray) -> ObjectArray:
        """UTF-8 text deltas `[B, beams]` for the first `lengths[b, beam]` ids of each beam.

        Without a request id there is nothing to key state by: each call is decoded on its own
        (right for non-streamed requests, which get every token in one call).
        """
        if tokens.ndim != 3 or lengths.shape != tokens.shape[:2]:
            raise ValueError(
                f"TOKENS_BATCH {tokens.shape} and SEQUENCE_LENGTH {lengths.shape} do not match"
            )
        out = np.empty(tokens.shape[:2], dtype=np.object_)
        for (row, beam), length in np.ndenumerate(lengths):
            ids = tokens[row, beam, : max(int(length), 0)].tolist()
            out[row, beam] = self._delta(request_id, row, beam, ids).encode("utf-8")
        return out

    def _delta(self, request_id: str, row: int, beam: int, ids: list[int]) -> str:
        if not request_id:
            detokenizer = self._new_detokenizer()
            return detokenizer.push(ids) + detokenizer.flush()
        return self._states.get((request_id, row, beam)).push(ids)
