"""An empty raw prompt starts from the start-of-document token instead of failing the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from transformers import PreTrainedTokenizerBase

from inference.preprocessing import Preprocessor, PreprocessRequest
from inference.tokenization import ContextLengthExceededError, load_tokenizer


def _queries(*texts: str) -> npt.NDArray[np.object_]:
    return np.array([[text.encode()] for text in texts], dtype=np.object_)


def _request(*texts: str, max_tokens: int = 4) -> PreprocessRequest:
    lengths = np.full((len(texts), 1), max_tokens, dtype=np.int32)
    return PreprocessRequest(output_lengths=lengths, queries=_queries(*texts))


def test_the_tokenizer_adds_nothing_for_an_empty_text(tokenizer: PreTrainedTokenizerBase) -> None:
    # The case this covers: no BOS of the tokenizer's own, so "" encodes to no token at all.
    assert tokenizer.bos_token_id is None
    assert tokenizer.encode("", add_special_tokens=True) == []


def test_empty_prompt_gets_the_models_start_token(tokenizer: PreTrainedTokenizerBase) -> None:
    preprocessor = Preprocessor(tokenizer, max_context=64, start_id=0)
    result = preprocessor(_request("", "Hello", ""))
    hello = tokenizer.encode("Hello", add_special_tokens=True)
    assert result.request_input_len[:, 0].tolist() == [1, len(hello), 1]
    assert result.input_id[0, 0] == 0 and result.input_id[2, 0] == 0
    assert result.input_id[1, : len(hello)].tolist() == hello


def test_without_a_declared_start_token_eos_starts_the_document(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    result = Preprocessor(tokenizer, max_context=64)(_request(""))
    assert result.input_id.tolist() == [[tokenizer.eos_token_id]]


def test_the_tokenizers_own_bos_comes_first(tokenizer_dir: Path) -> None:
    with_bos = load_tokenizer(tokenizer_dir)
    with_bos.bos_token = "<|im_start|>"
    result = Preprocessor(with_bos, max_context=64, start_id=0)(_request(""))
    assert result.input_id.tolist() == [[with_bos.bos_token_id]]


@pytest.mark.parametrize("config_name", ["generation_config.json", "config.json"])
def test_from_dir_reads_the_declared_bos(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path, config_name: str
) -> None:
    tokenizer.save_pretrained(str(tmp_path))
    declared = {"bos_token_id": 3, "max_position_embeddings": 32}
    (tmp_path / config_name).write_text(json.dumps(declared), encoding="utf-8")
    preprocessor = Preprocessor.from_dir(tmp_path, 32)
    assert preprocessor.start_id == 3
    assert preprocessor(_request("")).input_id.tolist() == [[3]]


def test_the_start_token_counts_against_the_context(tokenizer: PreTrainedTokenizerBase) -> None:
    preprocessor = Preprocessor(tokenizer, max_context=8, start_id=0)
    assert preprocessor(_request("", max_tokens=7)).request_output_len.tolist() == [[7]]
    with pytest.raises(ContextLengthExceededError):
        preprocessor(_request("", max_tokens=8))
