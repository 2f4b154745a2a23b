"""The preprocessing step on numpy arrays, shaped as Triton hands them over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from transformers import PreTrainedTokenizerBase

from inference.preprocessing import Preprocessor, PreprocessRequest
from inference.tokenization import ContextLengthExceededError


def _bytes(*rows: list[str]) -> npt.NDArray[np.object_]:
    return np.array([[s.encode() for s in row] for row in rows], dtype=np.object_)


def _lens(*values: int) -> npt.NDArray[np.int32]:
    return np.array([[v] for v in values], dtype=np.int32)


@pytest.fixture(scope="module")
def preprocessor(tokenizer: PreTrainedTokenizerBase) -> Preprocessor:
    return Preprocessor(tokenizer, max_context=64)


def test_messages(preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [{"role": "user", "content": "Hello!"}]
    result = preprocessor(
        PreprocessRequest(output_lengths=_lens(8), messages=_bytes([json.dumps(messages)]))
    )
    expected = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=False, add_generation_prompt=True
    )
    assert result.input_id.tolist() == [expected]
    assert result.request_input_len.tolist() == [[len(expected)]]
    assert result.request_output_len.tolist() == [[8]]
    assert result.out_end_id.tolist() == [[tokenizer.eos_token_id]]
    assert result.out_pad_id.tolist() == [[tokenizer.pad_token_id]]
    assert result.stop_words_ids.shape == (1, 2, 0)
    assert result.bad_words_ids.shape == (1, 2, 0)


def test_batch_of_queries_is_right_padded(preprocessor: Preprocessor) -> None:
    result = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4, 4),
            queries=_bytes(["Hello!"], ["one two three four five"]),
            pad_ids=_lens(-7, -9),
        )
    )
    short, long = result.request_input_len[:, 0].tolist()
    assert result.input_id.shape == (2, long)
    assert result.input_id[0, short:].tolist() == [-7] * (long - short)
    assert result.out_pad_id.tolist() == [[-7], [-9]]


def test_stop_and_bad_words(preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase) -> None:
    result = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4),
            queries=_bytes(["Hi"]),
            stop_words=_bytes(["Hello", ""]),
            bad_words=_bytes([" two"]),
            end_ids=_lens(3),
        )
    )
    hello = tokenizer.encode("Hello", add_special_tokens=False)
    spaced = tokenizer.encode(" Hello", add_special_tokens=False)
    width = len(hello) + len(spaced)
    assert result.stop_words_ids[0, 0].tolist() == hello + spaced
    assert result.stop_words_ids[0, 1].tolist()[:2] == [len(hello), width]
    assert result.bad_words_ids[0, 0].tolist() == tokenizer.encode(" two", add_special_tokens=False)
    assert result.out_end_id.tolist() == [[3]]


def test_context_length_exceeded(preprocessor: Preprocessor) -> None:
    with pytest.raises(ContextLengthExceededError, match=r"^context_length_exceeded: .* 64 tokens"):
        preprocessor(PreprocessRequest(output_lengths=_lens(63), queries=_bytes(["Hello! " * 5])))


@pytest.mark.parametrize(
    ("queries", "messages", "match"),
    [(None, None, "exactly one"), (["a"], ["[]"], "exactly one")],
)
def test_prompt_must_be_one_of_text_or_messages(
    preprocessor: Preprocessor, queries: list[str] | None, messages: list[str] | None, match: str
) -> None:
    request = PreprocessRequest(
        output_lengths=_lens(1),
        queries=None if queries is None else _bytes(queries),
        messages=None if messages is None else _bytes(messages),
    )
    with pytest.raises(ValueError, match=match):
        preprocessor(request)


def test_max_tokens_must_be_positive(preprocessor: Preprocessor) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        preprocessor(PreprocessRequest(output_lengths=_lens(0), queries=_bytes(["Hi"])))


def test_from_dir_reads_the_context_window(tokenizer_dir: Path) -> None:
    assert Preprocessor.from_dir(tokenizer_dir, max_context_tokens=128).max_context == 128
