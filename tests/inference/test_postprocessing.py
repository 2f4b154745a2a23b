"""Per-request incremental detokenization of streamed TOKENS_BATCH tensors."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import PreTrainedTokenizerBase

from inference.postprocessing import Postprocessor

TEXT = "Zürich 日本 😊 two  spaces"


def _call(post: Postprocessor, request_id: str, ids: list[int]) -> str:
    tokens = np.array([[ids]], dtype=np.int32)
    lengths = np.array([[len(ids)]], dtype=np.int32)
    out = post(request_id, tokens, lengths)
    assert out.shape == (1, 1)
    return bytes(out[0, 0]).decode("utf-8")


def test_interleaved_streams_keep_their_own_state(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    post = Postprocessor(tokenizer)
    a, b = [], []
    for token in ids:
        a.append(_call(post, "a", [token]))
        b.append(_call(post, "b", [token]))
    assert "".join(a) == "".join(b) == TEXT
    assert not any("\ufffd" in delta for delta in a)
    assert post.active_streams == 2


def test_without_request_id_each_call_stands_alone(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    post = Postprocessor(tokenizer)
    assert _call(post, "", ids) == TEXT
    assert post.active_streams == 0


def test_sequence_length_limits_each_beam(tokenizer: PreTrainedTokenizerBase) -> None:
    one, two = (tokenizer.encode(w, add_special_tokens=False)[0] for w in ("one", "two"))
    tokens = np.array([[[one, two], [two, one]]], dtype=np.int32)
    out = Postprocessor(tokenizer)("r", tokens, np.array([[1, 2]], dtype=np.int32))
    assert out.shape == (1, 2)
    assert [bytes(x).decode() for x in out[0]] == [
        tokenizer.decode([one]),
        tokenizer.decode([two, one]),
    ]


def test_shape_mismatch_is_rejected(tokenizer: PreTrainedTokenizerBase) -> None:
    with pytest.raises(ValueError, match="do not match"):
        Postprocessor(tokenizer)("r", np.zeros((1, 1, 3), np.int32), np.zeros((2, 1), np.int32))
