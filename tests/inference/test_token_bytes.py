"""Raw bytes per token: they concatenate to the decoded text, split characters included."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from inference.token_bytes import token_bytes_table

TEXT = "Zürich 日本 😊 two  spaces\n\tend"


def test_byte_level_tokens_concatenate_to_the_text(tokenizer: PreTrainedTokenizerBase) -> None:
    table = token_bytes_table(tokenizer)
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    assert b"".join(table[i] for i in ids) == TEXT.encode()
    # Some token holds only part of a character: decoding it alone could not give its bytes.
    assert any("\ufffd" in str(tokenizer.decode([i])) for i in ids)


def test_sentencepiece_byte_fallback_tokens(
    sentencepiece_tokenizer: PreTrainedTokenizerBase,
) -> None:
    table = token_bytes_table(sentencepiece_tokenizer)
    ids = sentencepiece_tokenizer.encode(TEXT, add_special_tokens=False)
    # The "▁" that starts the text is the space the decoder strips.
    assert b"".join(table[i] for i in ids) == b" " + TEXT.encode()


def test_special_tokens_have_no_bytes(tokenizer: PreTrainedTokenizerBase) -> None:
    table = token_bytes_table(tokenizer)
    assert len(table) == len(tokenizer)
    assert all(table[i] == b"" for i in tokenizer.all_special_ids)
