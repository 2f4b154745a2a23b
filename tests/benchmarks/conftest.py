"""The inference tests' byte-level ChatML tokenizer (tiny-chat's when it exists)."""

from tests.inference.conftest import tokenizer, tokenizer_dir

__all__ = ["tokenizer", "tokenizer_dir"]
