"""Incremental detokenization: deltas concatenate to the full decode, in O(1) per token."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import PreTrainedTokenizerBase

from inference.detokenizer import DetokenizerCache, IncrementalDetokenizer, decode_stream

TEXT = "Hello! Zürich 日本 😊 café  two  spaces, こんにちは."


def _full(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    return str(tokenizer.decode(ids, skip_special_tokens=True))


def _chunked(ids: list[int], cuts: list[int]) -> list[list[int]]:
    bounds = [0, *sorted({c % (len(ids) + 1) for c in cuts}), len(ids)]
    return [ids[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.fixture(params=["byte_level", "sentencepiece"])
def any_tokenizer(
    request: pytest.FixtureRequest,
    tokenizer: PreTrainedTokenizerBase,
    sentencepiece_tokenizer: PreTrainedTokenizerBase,
) -> PreTrainedTokenizerBase:
    return tokenizer if request.param == "byte_level" else sentencepiece_tokenizer


def test_token_by_token_matches_full_decode(any_tokenizer: PreTrainedTokenizerBase) -> None:
    ids = any_tokenizer.encode(TEXT, add_special_tokens=False)
    deltas = decode_stream(any_tokenizer, [[i] for i in ids])
    assert "".join(deltas) == _full(any_tokenizer, ids) == TEXT
    assert not any("\ufffd" in delta for delta in deltas)


def test_decoding_chunks_alone_is_the_bug_this_fixes(
    sentencepiece_tokenizer: PreTrainedTokenizerBase,
) -> None:
    ids = sentencepiece_tokenizer.encode(TEXT, add_special_tokens=False)
    naive = "".join(_full(sentencepiece_tokenizer, [i]) for i in ids)
    assert naive != TEXT


def test_leading_space_of_a_later_token_is_kept(
    sentencepiece_tokenizer: PreTrainedTokenizerBase,
) -> None:
    ids = sentencepiece_tokenizer.encode("one two", add_special_tokens=False)
    detokenizer = IncrementalDetokenizer(sentencepiece_tokenizer)
    first = detokenizer.push(ids[:1])
    rest = detokenizer.push(ids[1:])
    assert first + rest == "one two"
    assert not first.startswith(" ")


def test_split_character_is_held_back(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode("a🦄", add_special_tokens=False)
    assert len(ids) > 2, "the emoji must span several tokens for this test"
    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.push([i]) for i in ids]
    assert deltas == ["a", *[""] * (len(ids) - 2), "🦄"]
    assert detokenizer.num_tokens == len(ids)


def test_flush_releases_an_incomplete_character(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode("a🦄", add_special_tokens=False)
    detokenizer = IncrementalDetokenizer(tokenizer)
    held = detokenizer.push(ids[:1]) + detokenizer.push(ids[1:-1])
    tail = detokenizer.flush()
    assert held == "a"
    assert tail.endswith("\ufffd")
    assert held + tail == _full(tokenizer, ids[:-1])


def test_special_tokens_are_skipped(tokenizer: PreTrainedTokenizerBase) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = [*tokenizer.encode("Hi", add_special_tokens=False), im_end]
    assert "".join(decode_stream(tokenizer, [[i] for i in ids])) == "Hi"


class _WindowRecorder:
    """A tokenizer wrapper recording how many ids each decode call received."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self.windows: list[int] = []

    def decode(self, token_ids: list[int], skip_special_tokens: bool = False, **kwargs: Any) -> Any:
        self.windows.append(len(token_ids))
        return self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)


def test_each_step_decodes_a_bounded_window(tokenizer: PreTrainedTokenizerBase) -> None:
    ids = tokenizer.encode(TEXT * 20, add_special_tokens=False)
    recorder = _WindowRecorder(tokenizer)
    detokenizer = IncrementalDetokenizer(recorder)
    text = "".join(detokenizer.push([i]) for i in ids)
    assert text == TEXT * 20
    # A 4-byte character split over 4 tokens is the widest window this text needs.
    assert max(recorder.windows) <= 6


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_ids_in_random_chunks(
    tokenizer: PreTrainedTokenizerBase, data: st.DataObject
) -> None:
    ids = data.draw(st.lists(st.integers(0, len(tokenizer) - 1), max_size=40), label="ids")
    cuts = data.draw(st.lists(st.integers(0, 40), max_size=10), label="cuts")
    deltas = decode_stream(tokenizer, _chunked(ids, cuts))
    assert "".join(deltas) == _full(tokenizer, ids)
    assert not any(d.endswith("\ufffd") for d in deltas[:-1])


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_text_in_random_chunks(
    tokenizer: PreTrainedTokenizerBase,
    sentencepiece_tokenizer: PreTrainedTokenizerBase,
    data: st.DataObject,
) -> None:
    chosen = data.draw(st.sampled_from([tokenizer, sentencepiece_tokenizer]), label="tokenizer")
    text = data.draw(st.text(max_size=30), label="text")
    ids = chosen.encode(text, add_special_tokens=False)
    cuts = data.draw(st.lists(st.integers(0, 60), max_size=10), label="cuts")
    deltas = decode_stream(chosen, _chunked(ids, cuts))
    assert "".join(deltas) == _full(chosen, ids)


class TestDetokenizerCache:
    def _cache(self, tokenizer: PreTrainedTokenizerBase, now: list[float]) -> DetokenizerCache:
        return DetokenizerCache(
            lambda: IncrementalDetokenizer(tokenizer), capacity=2, ttl_s=10, clock=lambda: now[0]
        )

    def test_same_key_same_state(self, tokenizer: PreTrainedTokenizerBase) -> None:
        cache = self._cache(tokenizer, [0.0])
        assert cache.get("a") is cache.get("a")

    def test_least_recently_used_is_evicted(self, tokenizer: PreTrainedTokenizerBase) -> None:
        cache = self._cache(tokenizer, [0.0])
        cache.get("a")
        cache.get("b")
        cache.get("a")
        cache.get("c")
        assert "b" not in cache
        assert ("a" in cache, "c" in cache, len(cache)) == (True, True, 2)

    def test_idle_entries_expire(self, tokenizer: PreTrainedTokenizerBase) -> None:
        now = [0.0]
        cache = self._cache(tokenizer, now)
        cache.get("a")
        now[0] = 5.0
        cache.get("b")
        now[0] = 12.0
        cache.get("b")
        assert "a" not in cache
        assert "b" in cache

    def test_discard(self, tokenizer: PreTrainedTokenizerBase) -> None:
        cache = self._cache(tokenizer, [0.0])
        cache.get("a")
        cache.discard("a")
        cache.discard("missing")
        assert len(cache) == 0

    def test_rejects_bad_bounds(self, tokenizer: PreTrainedTokenizerBase) -> None:
        with pytest.raises(ValueError):
            DetokenizerCache(lambda: IncrementalDetokenizer(tokenizer), capacity=0)
