"""Merging, decoding and dropping rows of the shared KV cache, checked against full recompute."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from inference.kv_batch import KVBatch, cache_argument_name
from tests.inference.tiny_llama import save_tiny_llama


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedModel:
    directory = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    loaded: PreTrainedModel = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    return loaded


def full_logits(model: PreTrainedModel, tokens: list[int]) -> torch.Tensor:
    """Next-token logits from the whole sequence, no cache, no padding."""
    logits: torch.Tensor = model(torch.tensor([tokens])).logits[0, -1]
    return logits


class Runner:
    """Drives a KVBatch greedily and keeps each row's tokens for the reference."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.batch = KVBatch(model)
        self.rows: list[list[int]] = []

    def join(self, prompt: list[int]) -> None:
        logits, cache = self.batch.prefill(prompt)
        assert torch.allclose(logits, full_logits(self.model, prompt), atol=1e-5)
        self.batch.add(cache)
        self.rows.append([*prompt, int(logits.argmax())])

    def step(self) -> None:
        logits = self.batch.decode([row[-1] for row in self.rows])
        for row, row_logits in zip(self.rows, logits, strict=True):
            assert torch.allclose(row_logits, full_logits(self.model, row), atol=1e-5)
            row.append(int(row_logits.argmax()))

    def keep(self, rows: list[int]) -> None:
        self.batch.keep(rows)
        self.rows = [self.rows[row] for row in rows]
        # Columns only pads occupy are gone: the longest row has no pad (its last token is not
        # in the cache yet).
        assert self.batch.width == max((len(row) - 1 for row in self.rows), default=0)


def test_rows_joining_and_leaving_match_full_recompute(model: PreTrainedModel) -> None:
    runner = Runner(model)
    with torch.inference_mode():
        runner.join([5, 6, 7])
        runner.step()
        runner.step()
        runner.join(list(range(10, 22)))  # longer than the batch: the batch gets left-padded
        runner.step()
        runner.join([200])  # shorter: the newcomer gets left-padded
        assert runner.batch.size == 3
        runner.step()
        runner.keep([0, 2])  # the longest row leaves: pad-only columns are trimmed
        runner.step()
        runner.step()
        runner.keep([1])
        runner.step()
        runner.keep([])
        assert runner.batch.size == 0
        runner.join([1, 2, 3, 4])
        runner.step()


def test_cache_argument_name_follows_the_installed_transformers(model: PreTrainedModel) -> None:
    assert cache_argument_name(model) in {"cache", "past_key_values"}
