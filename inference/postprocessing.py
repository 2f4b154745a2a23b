"""The `postprocessing` step on numpy arrays: streamed output ids in, text deltas out.

Triton's ensemble calls postprocessing once per response of the decoupled `tensorrt_llm` step,
each time with only the new tokens. Decoding every call on its own loses spaces and splits
characters, so one `IncrementalDetokenizer` per (request id, batch row, beam) lives across the
calls of a stream.

Assumptions, checked against Triton 2.51 (see model_repository/common/postprocessing):
- the ensemble passes the client's request id to composing models, and the API sends a
  unique id per request;
- postprocessing runs as ONE instance (instances are separate processes), so the calls of one
  stream see the same state and arrive in order: its dynamic batcher takes requests from one
  FIFO queue, runs one batch at a time and model.py handles a batch's requests in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from inference.detokenizer import DetokenizerCache, IncrementalDetokenizer, TokenDecoder
from inference.tokenization import IntArray

ObjectArray = npt.NDArray[np.object_]
DEFAULT_CACHE_SIZE: Final = 4096
DEFAULT_TTL_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Detokenized:
    """UTF-8 arrays ``[B, beams]``: the text each call completes, and the held-back tail.

    ``pending`` is what the stream's text would end with if it ended now: a character whose
    bytes have not all arrived yet, decoded as U+FFFD. Streams never announce their end to this
    model, so the client keeps the latest ``pending`` and appends it when the stream ends;
    a later delta that completes the character makes it empty again.
    """

    text: ObjectArray
    pending: ObjectArray


class Postprocessor:
    """Per-request incremental detokenization of `TOKENS_BATCH` `[B, beams, T]` tensors."""

    def __init__(
        self,
        tokenizer: TokenDecoder,
        cache_size: int = DEFAULT_CACHE_SIZE,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = len(tokenizer)
        self._states = DetokenizerCache(self._new_detokenizer, capacity=cache_size, ttl_s=ttl_s)

    def _new_detokenizer(self) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(self._tokenizer)

    @property
    def active_streams(self) -> int:
        """How many (request, row, beam) states are kept."""
        return len(self._states)

    def __call__(self, request_id: str, tokens: IntArray, lengths: IntArray) -> Detokenized:
        """UTF-8 text deltas `[B, beams]` for the first `lengths[b, beam]` ids of each beam.

        Without a request id there is nothing to key state by: each call is decoded on its own
        (right for non-streamed requests, which get every token in one call).
        """
        if tokens.ndim != 3 or lengths.shape != tokens.shape[:2]:
            raise ValueError(
                f"TOKENS_BATCH {tokens.shape} and SEQUENCE_LENGTH {lengths.shape} do not match"
            )
        if lengths.size and (lengths.min() < 0 or lengths.max() > tokens.shape[-1]):
            raise ValueError(f"SEQUENCE_LENGTH must lie in [0, {tokens.shape[-1]}]")
        text = np.empty(tokens.shape[:2], dtype=np.object_)
        pending = np.empty(tokens.shape[:2], dtype=np.object_)
        for (row, beam), length in np.ndenumerate(lengths):
            ids = tokens[row, beam, : int(length)].tolist()
            if ids and not 0 <= min(ids) <= max(ids) < self._vocab_size:
                raise ValueError(f"TOKENS_BATCH ids must lie in [0, {self._vocab_size})")
            delta, tail = self._delta(request_id, row, beam, ids)
            text[row, beam] = delta.encode("utf-8")
            pending[row, beam] = tail.encode("utf-8")
        return Detokenized(text, pending)

    def _delta(self, request_id: str, row: int, beam: int, ids: list[int]) -> tuple[str, str]:
        if not request_id:
            detokenizer = self._new_detokenizer()
            return detokenizer.push(ids) + detokenizer.flush(), ""
        detokenizer = self._states.get((request_id, row, beam))
        return detokenizer.push(ids), detokenizer.pending
