"""A running batch of sequences that share one left-padded KV cache.

Rows are sequences; columns are cache positions. A sequence that joins is prefilled alone (so no
padded query ever runs through the model and pads never hold anything but zeros), then its cache
is left-padded to the batch's width and concatenated below the others. Every decode step feeds
each row's last token with its own position id and an attention mask in which pads are 0.
Finished rows are dropped with an index select, and columns that only pads still occupy are
trimmed from the left.

This uses transformers 5.x's ``DynamicCache``: reading a layer through iteration (``keys,
values, _``) and building one from per-layer ``(keys, values)`` pairs.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel


def cache_argument_name(model: PreTrainedModel) -> str:
    """The forward keyword for the KV cache (``cache`` in transformers 5.x, else the old name)."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _layers(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(keys, values) for keys, values, *_ in cache]


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    # F.pad lists (left, right) pairs starting from the last dimension.
    padding = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [missing, 0]
    return F.pad(tensor, padding)


class KVBatch:
    """Cache, attention mask, position ids and last tokens of the rows in flight."""

    def __init__(self, model: PreTrainedModel) -> None:
        self._model = model
        self._cache_arg = cache_argument_name(model)
        self._cache = DynamicCache()
        self._mask = torch.zeros((0, 0), dtype=torch.long)
        self._positions = torch.zeros(0, dtype=torch.long)

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self._positions.shape[0])

    @property
    def width(self) -> int:
        """Number of cache positions per row, pads included."""
        return int(self._mask.shape[1])

    def prefill(self, input_ids: Sequence[int]) -> tuple[torch.Tensor, DynamicCache]:
        """Run one prompt alone; returns the last position's logits and its cache."""
        ids = torch.tensor([list(input_ids)], dtype=torch.long)
        cache = DynamicCache()
        output = self._model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            position_ids=torch.arange(ids.shape[1]).unsqueeze(0),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_arg: cache},
        )
        return output.logits[0, -1], cache

    def add(self, cache: DynamicCache) -> None:
        """Append a prefilled sequence as the last row."""
        new_layers = _layers(cache)
        length = new_layers[0][0].shape[-2]
        width = max(self.width, length)
        if self.size == 0:
            self._cache = cache
        else:
            merged = [
                (
                    torch.cat([_left_pad(k, width, -2), _left_pad(nk, width, -2)]),
                    torch.cat([_left_pad(v, width, -2), _left_pad(nv, width, -2)]),
                )
                for (k, v), (nk, nv) in zip(_layers(self._cache), new_layers, strict=True)
            ]
            self._cache = DynamicCache(ddp_cache_data=merged)
        row_mask = _left_pad(torch.ones((1, length), dtype=torch.long), width, -1)
        self._mask = torch.cat([_left_pad(self._mask, width, -1), row_mask])
        self._positions = torch.cat([self._positions, torch.tensor([length])])

    def decode(self, last_tokens: Sequence[int]) -> torch.Tensor:
        """Feed each row's last token; returns next-token logits ``[rows, vocab]``."""
        self._mask = F.pad(self._mask, [0, 1], value=1)
        output = self._model(
            input_ids=torch.tensor(list(last_tokens), dtype=torch.long).unsqueeze(1),
            attention_mask=self._mask,
            position_ids=self._positions.unsqueeze(1),
            use_cache=True,
            **{self._cache_arg: self._cache},
        )
        self._positions = self._positions + 1
        logits: torch.Tensor = output.logits[:, -1]
        return logits

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only ``rows`` (in that order), then trim columns that are pads in every row."""
        if len(rows) == self.size:
            return
        index = torch.tensor(list(rows), dtype=torch.long)
        mask = self._mask[index]
        used = mask.any(dim=0).nonzero()
        start = int(used[0].item()) if used.numel() else mask.shape[1]
        self._mask = mask[:, start:]
        self._positions = self._positions[index]
        if not rows:
            self._cache = DynamicCache()
            return
        self._cache = DynamicCache(
            ddp_cache_data=[
                (k[index, :, start:], v[index, :, start:]) for k, v in _layers(self._cache)
            ]
        )
