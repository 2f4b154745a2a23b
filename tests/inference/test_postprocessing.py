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
    out = post(request_id, tokens, lengths).text
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
    out = Postprocessor(tokenizer)("r", tokens, np.array([[1, 2]], dtype=np.int32)).text
    assert out.shape == (1, 2)
    assert [bytes(x).decode() for x in out[0]] == [
        tokenizer.decode([one]),
        tokenizer.decode([two, one]),
    ]


def test_shape_mismatch_is_rejected(tokenizer: PreTrainedTokenizerBase) -> None:
    with pytest.raises(ValueError, match="do not match"):
        Postprocessor(tokenizer)("r", np.zeros((1, 1, 3), np.int32), np.zeros((2, 1), np.int32))


def _split_character_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], str]:
    """Ids of a text whose last character spans several tokens, cut inside that character."""
    for text in ("Tritoná", "Zürich 日本", "ok 😊"):
        ids = tokenizer.encode(text, add_special_tokens=False)
        for cut in range(len(ids) - 1, 0, -1):
            if tokenizer.decode(ids[:cut]).endswith("\ufffd"):
                return ids[:cut], tokenizer.decode(ids[:cut])
    pytest.skip("the tokenizer never splits a character over tokens")


def test_pending_reports_a_split_character_until_it_completes(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    ids, whole = _split_character_ids(tokenizer)
    post = Postprocessor(tokenizer)
    texts, pendings = [], []
    for token in ids:
        out = post("r", np.array([[[token]]], dtype=np.int32), np.array([[1]], dtype=np.int32))
        texts.append(bytes(out.text[0, 0]).decode())
        pendings.append(bytes(out.pending[0, 0]).decode())
    # What was shown plus the last pending tail is exactly the text decoded at once.
    assert "".join(texts) + pendings[-1] == whole
    assert pendings[-1].endswith("\ufffd")


def test_pending_is_empty_when_nothing_is_held_back(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode("plain words", add_special_tokens=False)
    out = Postprocessor(tokenizer)("r", np.array([[ids]], dtype=np.int32), np.array([[len(ids)]]))
    assert bytes(out.pending[0, 0]) == b""


@pytest.mark.parametrize("bad", [-1, 10**6])
def test_ids_outside_the_vocabulary_are_refused(
    tokenizer: PreTrainedTokenizerBase, bad: int
) -> None:
    with pytest.raises(ValueError, match="must lie in"):
        Postprocessor(tokenizer)("r", np.array([[[bad]]], np.int32), np.array([[1]], np.int32))


@pytest.mark.parametrize("length", [-1, 2])
def test_lengths_outside_the_tokens_are_refused(
    tokenizer: PreTrainedTokenizerBase, length: int
) -> None:
    with pytest.raises(ValueError, match="SEQUENCE_LENGTH"):
        Postprocessor(tokenizer)("r", np.array([[[5]]], np.int32), np.array([[length]], np.int32))
