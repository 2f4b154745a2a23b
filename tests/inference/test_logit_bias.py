"""OpenAI logit_bias -> dense embedding_bias -> the engine's greedy choice."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from inference.generation import GenerationEngine
from inference.logit_bias import FloatArray, dense_logit_bias
from inference.trtllm_io import parse_request
from tests.inference.tiny_llama import VOCAB_SIZE, collect, save_tiny_llama, tokens_of

PROMPT = (5, 17, 42, 99, 7)


def bias(ids: list[int], weights: list[float], vocab_size: int = VOCAB_SIZE) -> FloatArray:
    return dense_logit_bias(
        np.array([ids], dtype=np.int32), np.array([weights], dtype=np.float32), vocab_size, 1
    )


def test_pairs_become_one_value_per_vocabulary_entry() -> None:
    dense = bias([3, 7, 3], [1.0, -100.0, 2.5], vocab_size=10)
    assert dense.tolist() == [[0.0, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0, -100.0, 0.0, 0.0]]
    assert dense_logit_bias(None, None, 10, 2).shape == (2, 0)
    empty = np.zeros((1, 0))
    assert dense_logit_bias(empty, empty, 10, 1).shape == (1, 0)


def test_rows_are_as_wide_as_a_padded_engine_vocabulary() -> None:
    ids, weights = np.array([[9]], dtype=np.int32), np.array([[4.0]], dtype=np.float32)
    dense = dense_logit_bias(ids, weights, 10, 1, width=16)
    assert dense.shape == (1, 16)
    assert dense[0, 9] == 4.0
    assert np.count_nonzero(dense) == 1
    # Ids stay bounded by the tokenizer: the padding is no vocabulary.
    with pytest.raises(ValueError, match="token id 12 is not in the vocabulary"):
        dense_logit_bias(np.array([[12]]), weights, 10, 1, width=16)
    assert dense_logit_bias(ids, weights, 10, 1, width=4).shape == (1, 10)


@pytest.mark.parametrize(
    ("ids", "weights", "message"),
    [
        ([10], [1.0], "token id 10 is not in the vocabulary"),
        ([-1], [1.0], "token id -1 is not in the vocabulary"),
        ([1], [100.5], "outside"),
        ([1], [float("nan")], "outside"),
        ([1, 2], [1.0], "2 token ids but 1 bias values"),
    ],
)
def test_bad_pairs_are_request_errors(ids: list[int], weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^invalid_logit_bias: .*{message}"):
        bias(ids, weights, vocab_size=10)
    with pytest.raises(ValueError, match=r"^invalid_logit_bias: .* go together"):
        dense_logit_bias(np.array([[1]]), None, 10, 1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenerationEngine]:
    engine = GenerationEngine.from_pretrained(save_tiny_llama(tmp_path_factory.mktemp("llama")))
    engine.start()
    yield engine
    engine.close()


def greedy(engine: GenerationEngine, embedding_bias: FloatArray | None = None) -> list[int]:
    tensors = {
        "input_ids": np.array([PROMPT], dtype=np.int32),
        "request_output_len": np.array([6], dtype=np.int32),
        "temperature": np.array([0.0], dtype=np.float32),
    }
    if embedding_bias is not None:
        tensors["embedding_bias"] = embedding_bias
    return tokens_of(collect(engine, parse_request(tensors, "", None).generation))


def test_logit_bias_changes_the_greedy_choice(engine: GenerationEngine) -> None:
    free = greedy(engine)
    banned = greedy(engine, bias([free[0]], [-100.0]))
    assert banned[0] != free[0]
    assert free[0] not in banned
    assert greedy(engine, bias([123], [100.0])) == [123] * 6
    assert greedy(engine, dense_logit_bias(None, None, VOCAB_SIZE, 1)) == free


def test_a_bias_for_a_smaller_tokenizer_vocabulary_is_padded(engine: GenerationEngine) -> None:
    # TensorRT-LLM sizes the bias by the tokenizer; the model's vocabulary may be padded.
    assert greedy(engine, bias([7], [100.0], vocab_size=VOCAB_SIZE - 44)) == [7] * 6
