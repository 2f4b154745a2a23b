"""Models that declare several end-of-sequence ids stop at each of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import PreTrainedTokenizerBase

from inference.preprocessing import Preprocessor, PreprocessRequest
from inference.tokenization import end_ids_from_model_dir


def _request(stop: list[str] | None = None) -> PreprocessRequest:
    words = None if stop is None else np.array([[s.encode() for s in stop]], dtype=np.object_)
    return PreprocessRequest(
        output_lengths=np.array([[4]], dtype=np.int32),
        queries=np.array([[b"Hi"]], dtype=np.object_),
        stop_words=words,
    )


def _words(packed: np.ndarray) -> list[list[int]]:
    """TensorRT-LLM's [2, L] word list back to one id list per word."""
    ids, ends = packed[0].tolist(), [end for end in packed[1].tolist() if end >= 0]
    return [ids[start:end] for start, end in zip([0, *ends], ends, strict=False)]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"generation_config.json": {"eos_token_id": [2, 0]}}, [2, 0]),
        ({"generation_config.json": {"eos_token_id": 7}}, [7]),
        ({"config.json": {"eos_token_id": [5, 6]}}, [5, 6]),
        ({"generation_config.json": {}, "config.json": {"eos_token_id": 3}}, [3]),
        ({}, []),
    ],
)
def test_end_ids_come_from_the_model_config(
    tmp_path: Path, files: dict[str, dict[str, object]], expected: list[int]
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    assert end_ids_from_model_dir(tmp_path) == expected


def test_every_other_end_id_is_a_stop_word(tokenizer: PreTrainedTokenizerBase) -> None:
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    others = [token for token in range(3) if token != eos][:2]
    preprocessor = Preprocessor(tokenizer, max_context=64, end_ids=[eos, *others, others[0]])
    result = preprocessor(_request())
    assert _words(result.stop_words_ids[0]) == [[token] for token in others]
    assert result.out_end_id.tolist() == [[eos]]
    # The client's stop words come first; the end ids are added to them.
    with_stop = preprocessor(_request(["Hello"]))
    words = _words(with_stop.stop_words_ids[0])
    assert words[-2:] == [[token] for token in others]
    assert tokenizer.encode("Hello", add_special_tokens=False) in words


def test_a_single_end_id_adds_no_stop_word(tokenizer: PreTrainedTokenizerBase) -> None:
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    result = Preprocessor(tokenizer, max_context=64, end_ids=[eos])(_request())
    assert result.stop_words_ids.shape[-1] == 0
