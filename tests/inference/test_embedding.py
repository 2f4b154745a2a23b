"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (loads the real model, ~5 s)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.embedding import EMBEDDING_DIM, SentenceEmbedder, model_dir


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder.load(device="cpu")


def test_model_files_ship_in_the_wheel() -> None:
    assert (model_dir() / "model.safetensors").is_file()


def test_unit_vectors_and_token_counts(embedder: SentenceEmbedder) -> None:
    batch = embedder.embed(["hello world", "a b c d é", ""])
    assert batch.vectors.shape == (3, EMBEDDING_DIM)
    assert batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, rtol=1e-5)
    # WordPiece adds [CLS] and [SEP]; padding in the batch is not counted.
    assert batch.num_tokens.tolist() == [4, 7, 2]
    assert batch.num_tokens.dtype == np.int32


def test_similar_texts_are_closer(embedder: SentenceEmbedder) -> None:
    cat, kitten, tax = embedder.embed(
        ["A cat sleeps.", "A kitten naps.", "Income tax rates"]
    ).vectors
    assert float(cat @ kitten) > float(cat @ tax) + 0.2


def test_batching_does_not_change_vectors(embedder: SentenceEmbedder) -> None:
    alone = embedder.embed(["a short text"]).vectors[0]
    batched = embedder.embed(["a short text", "a much longer text " * 10]).vectors[0]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_long_texts_are_refused_unless_truncation_is_asked(embedder: SentenceEmbedder) -> None:
    fits = "word " * (embedder.max_tokens - 2)  # [CLS] + words + [SEP]
    assert embedder.token_lengths([fits, fits + "word"]) == [256, 257]
    assert embedder.embed([fits]).num_tokens.tolist() == [embedder.max_tokens]
    with pytest.raises(ValueError, match=r"^invalid_request: an input has 257 tokens.*256"):
        embedder.embed(["short", fits + "word"])
    cut = embedder.embed(["word " * 1000], truncate=True)
    assert cut.num_tokens.tolist() == [embedder.max_tokens]
    np.testing.assert_allclose(cut.vectors[0], embedder.embed([fits]).vectors[0], atol=1e-5)


def test_long_token_arrays_are_refused_unless_truncation_is_asked(
    embedder: SentenceEmbedder,
) -> None:
    row = [101, *[2773] * embedder.max_tokens, 102]
    with pytest.raises(ValueError, match=r"^invalid_request: an input has 258 tokens"):
        embedder.embed_ids([row])
    assert embedder.embed_ids([row], truncate=True).num_tokens.tolist() == [256]


@pytest.mark.parametrize("bad", [-1, -(2**31), 30522, 2**31 - 1])
def test_ids_outside_the_vocabulary_are_refused(embedder: SentenceEmbedder, bad: int) -> None:
    assert embedder.vocab_size == 30522
    with pytest.raises(ValueError, match=r"^invalid_request:"):
        embedder.embed_ids([[101, bad, 102]])


def test_empty_batch(embedder: SentenceEmbedder) -> None:
    batch = embedder.embed([])
    assert batch.vectors.shape == (0, EMBEDDING_DIM)


def test_token_ids_give_the_same_vector_as_the_text() -> None:
    from inference.embedding import SentenceEmbedder

    embedder = SentenceEmbedder.load()
    text = "The cat sits on the mat."
    ids = embedder._model.tokenizer(text)["input_ids"]
    by_text = embedder.embed([text])
    by_ids = embedder.embed_ids([ids])
    assert float(by_text.vectors[0] @ by_ids.vectors[0]) > 0.9999
    assert by_ids.num_tokens.tolist() == by_text.num_tokens.tolist()


def test_out_of_vocabulary_ids_are_an_invalid_request() -> None:
    import pytest

    from inference.embedding import SentenceEmbedder

    with pytest.raises(ValueError, match=r"^invalid_request:"):
        SentenceEmbedder.load().embed_ids([[101, 10**9]])
