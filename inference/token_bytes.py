"""The raw bytes of every token, for OpenAI's ``logprobs`` (``token`` and ``bytes`` fields).

Decoding one token at a time loses bytes: a byte-level BPE token may hold half of a UTF-8
character, which ``decode`` turns into U+FFFD. The bytes are read from the vocabulary instead,
undoing the tokenizer's own encoding of them:
- byte-level BPE (GPT-2, Llama 3, Qwen): each character of a piece stands for one byte;
- SentencePiece style (Llama 2, Mistral): ``<0xNN>`` pieces are single bytes, ``▁`` a space;
- anything else: the piece as ``convert_tokens_to_string`` renders it.
Added tokens are literal text (byte pieces aside). Special tokens map to ``b""``: ``text_output``
skips them too, so the bytes of a response's tokens always concatenate to the bytes of its text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache

from transformers import PreTrainedTokenizerBase

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPACE_PIECE = "\u2581"


@cache
def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte <-> printable character table, as character -> byte.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, ...) are shifted
    to code points from 256 on, in byte order.
    """
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    alphabet = {chr(byte): byte for byte in kept}
    shifted = [byte for byte in range(256) if byte not in kept]
    for offset, byte in enumerate(shifted):
        alphabet[chr(256 + offset)] = byte
    return alphabet


def _decoder_types(tokenizer: PreTrainedTokenizerBase) -> set[str]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return set()
    pending = [json.loads(backend.to_str()).get("decoder") or {}]
    types: set[str] = set()
    while pending:
        decoder = pending.pop()
        types.add(str(decoder.get("type")))
        pending.extend(decoder.get("decoders") or [])
    return types


def _byte_level(piece: str) -> bytes:
    alphabet = _byte_level_alphabet()
    if all(char in alphabet for char in piece):
        return bytes(alphabet[char] for char in piece)
    return piece.encode("utf-8")


def _sentencepiece(piece: str) -> bytes:
    match = _BYTE_PIECE.fullmatch(piece)
    if match:
        return bytes([int(match.group(1), 16)])
    return piece.replace(_SPACE_PIECE, " ").encode("utf-8")


def _piece_decoder(tokenizer: PreTrainedTokenizerBase) -> Callable[[str], bytes]:
    types = _decoder_types(tokenizer)
    if "ByteLevel" in types:
        return _byte_level
    if types & {"ByteFallback", "Metaspace"}:
        return _sentencepiece
    return lambda piece: str(tokenizer.convert_tokens_to_string([piece])).encode("utf-8")


def token_bytes_table(tokenizer: PreTrainedTokenizerBase) -> list[bytes]:
    """``table[token_id]``: the bytes that token contributes to the decoded text."""
    vocab: dict[str, int] = tokenizer.get_vocab()
    added: dict[str, int] = tokenizer.get_added_vocab()
    special = set(tokenizer.all_special_ids)
    to_bytes = _piece_decoder(tokenizer)
    table = [b""] * (max(vocab.values(), default=-1) + 1)
    for piece, token_id in vocab.items():
        if token_id in special:
            continue
        # Added tokens are literal text, except byte pieces some vocabularies list as added.
        literal = piece in added and not _BYTE_PIECE.fullmatch(piece)
        table[token_id] = piece.encode("utf-8") if literal else to_bytes(piece)
    return table
